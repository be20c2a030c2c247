"""Ko-IFEval: IFEval's rule-verifiable instructions in Korean, scored by lm-eval's IFEval checkers
adapted for Korean (:mod:`.instructions`) on the public IFEval-Ko set (``allganize/IFEval-Ko``,
Apache-2.0, 342 prompts; the set the Korean leaderboards Horangi and HRET run).

The lm-eval task is ``evaluation/tasks/ko_ifeval.yaml``; ``midm eval --tasks ko_ifeval``.
"""
