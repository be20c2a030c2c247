"""Preference checks on Hugging Face directories: summed response log-probabilities of (chosen,
rejected) pairs, and the DPO quantities they give against a reference model.

The ids go through the directory's own chat template (``tokenizer.apply_chat_template``, checked
equal to ``data_prep.prefs.build.render_pair``); the response mask is the one ``midm data prefs``
writes (assistant content and its ``<|eot_id|>``). With β the DPO temperature (Rafailov et al.,
arXiv 2305.18290), the implicit reward of a response is ``β (log π(y|x) − log π_ref(y|x))``:

* ``reward_accuracy`` — share of pairs whose chosen reward exceeds the rejected one (strictly; 0
  when policy = reference, where every reward is 0), ``mean_margin`` — mean chosen − rejected reward;
* ``logp_accuracy`` — share of pairs with log π(chosen) > log π(rejected): the model's own
  preference, meaningful before DPO too, ``mean_logp_margin`` — its mean (nats).
"""
from __future__ import annotations

from pathlib import Path


def pair_logprobs(hf_dir: str | Path, pairs: list, midm_tokenizer) -> list[tuple[float, float]]:
    """``[(log π(chosen|prompt), log π(rejected|prompt))]`` in nats, summed over each response's targets.

    Args:
        pairs: ``data_prep.prefs.records.Pair`` objects.

    Raises:
        ValueError: the directory's chat template renders other ids than ``render_pair``.
    """
    import torch

    from data_prep.prefs.build import render_pair
    from evaluation.chat import _ids, _load

    tok, model = _load(hf_dir)
    out = []
    for pair in pairs:
        rendered = render_pair(pair, midm_tokenizer)
        sums = []
        for response, ids, mask in ((pair.chosen, rendered.chosen_ids, rendered.chosen_mask),
                                    (pair.rejected, rendered.rejected_ids, rendered.rejected_mask)):
            if _ids(tok.apply_chat_template(pair.prompt + response, tokenize=True)) != ids:
                raise ValueError(f"{hf_dir}: chat template ids differ from data_prep.prefs.build.render_pair")
            x = torch.tensor([ids])
            with torch.no_grad():
                logp = torch.log_softmax(model(x).logits[0, :-1].float(), dim=-1)
            picked = logp.gather(-1, x[0, 1:].unsqueeze(-1)).squeeze(-1)
            sums.append(float(picked[torch.tensor(mask[1:], dtype=torch.bool)].sum()))
        out.append((sums[0], sums[1]))
    return out


def preference_metrics(policy: list[tuple[float, float]], reference: list[tuple[float, float]],
                       beta: float) -> dict[str, float]:
    """DPO rewards of ``policy`` against ``reference`` (both from :func:`pair_logprobs`, same pairs)."""
    n = len(policy)
    chosen = [beta * (p[0] - r[0]) for p, r in zip(policy, reference, strict=True)]
    rejected = [beta * (p[1] - r[1]) for p, r in zip(policy, reference, strict=True)]
    margins = [c - r for c, r in zip(chosen, rejected)]
    logp_margins = [p[0] - p[1] for p in policy]
    return {"pairs": n, "reward_accuracy": sum(m > 0 for m in margins) / n, "mean_margin": sum(margins) / n,
            "chosen_reward": sum(chosen) / n, "rejected_reward": sum(rejected) / n,
            "logp_accuracy": sum(m > 0 for m in logp_margins) / n, "mean_logp_margin": sum(logp_margins) / n}


__all__ = ["pair_logprobs", "preference_metrics"]
