"""The model side of ``midm eval``: lm-eval's HF or vLLM model over one HF directory.

Both backends are lm-eval's own (``lm_eval.models.huggingface.HFLM`` and
``lm_eval.models.vllm_causallms.VLLM``), so the task registry, prompts and outputs are the same;
the one LM object serves lm-eval's tasks and the judge benchmarks' answer generation.

- ``hf``: ``batch_size="auto"`` on a GPU (lm-eval finds the largest batch that fits), 1 on CPU.
- ``vllm``: tensor-parallel over every visible GPU (``tensor_parallel_size = torch.cuda.device_count()``),
  lm-eval's automatic batching. vLLM is the optional extra ``pip install 'midm-recipes[vllm]'``;
  without it, :func:`check_backend` raises :class:`EvalError` (exit 2) before anything loads.

An instruct model is recognised by its tokenizer's chat template (:func:`has_chat_template`):
``midm eval`` then formats prompts with it unless ``--no-apply-chat-template``.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from midm.errors import MidmError

BACKENDS = ("hf", "vllm")


class EvalError(MidmError):
    """A user-fixable evaluation problem (missing local data, bad model dir, missing backend)."""


def check_backend(backend: str) -> None:
    """Fail early and clearly: unknown backend, or vLLM not installed."""
    if backend not in BACKENDS:
        raise EvalError(f"unknown --backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "vllm" and importlib.util.find_spec("vllm") is None:
        raise EvalError("--backend vllm needs vLLM, which is not installed: pip install 'midm-recipes[vllm]' "
                        "(or `pip install vllm` on a CUDA machine); --backend hf runs without it")


def has_chat_template(model_dir: Path) -> bool:
    """Whether the tokenizer in ``model_dir`` ships a chat template (an instruct/chat model).

    Reads the files ``transformers`` writes (``chat_template.jinja``, ``chat_template.json`` or the
    ``chat_template`` key of ``tokenizer_config.json``) without loading the tokenizer.
    """
    if (model_dir / "chat_template.jinja").is_file() or (model_dir / "chat_template.json").is_file():
        return True
    config = model_dir / "tokenizer_config.json"
    if config.is_file():
        try:
            return bool(json.loads(config.read_text(encoding="utf-8")).get("chat_template"))
        except ValueError as err:
            raise EvalError(f"{config} is not valid JSON: {err}") from err
    return False


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_batch_size(batch_size: int | str | None, device: str) -> int | str:
    """``None`` → ``"auto"`` on CUDA, 1 elsewhere; an explicit value is kept."""
    if batch_size is None:
        return "auto" if device.startswith("cuda") else 1
    if isinstance(batch_size, str) and batch_size != "auto":
        if not batch_size.isdigit() or int(batch_size) < 1:
            raise EvalError(f"--batch-size must be a positive integer or 'auto', not {batch_size!r}")
        return int(batch_size)
    return batch_size


def model_args(backend: str, model_dir: Path, *, dtype: str, device: str, batch_size: int | str,
               seed: int, max_gen_toks: int | None = None) -> dict[str, Any]:
    """lm-eval model arguments for ``backend`` (recorded in the results' provenance)."""
    args: dict[str, Any] = {"pretrained": str(model_dir), "dtype": dtype, "batch_size": batch_size}
    if backend == "hf":
        args["device"] = device
    else:
        args["tensor_parallel_size"] = max(1, gpu_count())
        args["seed"] = seed
    if max_gen_toks is not None:
        args["max_gen_toks"] = max_gen_toks
    return args


def make_lm(backend: str, args: dict[str, Any]):
    """Instantiate lm-eval's model class for ``backend`` (``hf`` → HFLM, ``vllm`` → VLLM)."""
    check_backend(backend)
    from lm_eval.api.registry import get_model

    return get_model(backend).create_from_arg_obj(dict(args))
