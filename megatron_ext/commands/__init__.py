"""Command-line entry points of the training stack, one module per ``midm`` stage.

Each module here only parses arguments and calls the logic module named beside it — the split is
the same for every stage::

    commands/train.py    → trainer.py       (Trainer: the loop every training stage shares)
    commands/distill.py  → distiller.py     (Distiller(Trainer): frozen teacher, KD loss)
    commands/dpo.py      → dpo.py           (DPOTrainer(Trainer): preference pairs, frozen reference)
    commands/dus.py      → depth_upscale.py (layer maps, streaming layer copy)
    commands/prune.py    → pruner.py        (+ importance.py, prune_slice.py)
    commands/convert.py  → hf_convert.py, hf_import.py    (+ hf/: one registered record per HF architecture and the
                                             streaming safetensors shards; hf_files.py: the HF directory;
                                             ckpt_tensors.py: partial reads of a dist-checkpoint)

Command modules import torch and Megatron-Core lazily, so ``midm <stage> --help`` is instant.
User errors are ``midm.errors.MidmError`` subclasses, reported once by ``midm/cli.py``.
"""
