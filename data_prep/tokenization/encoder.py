"""The loading seam for ``midm data tokenize``: one tokenizer directory, two encoders.

``tokenizer.load_tokenizer(DIR)`` (the project's tokenizer package) gives the ids that matter:
``eos_id`` and the vocabulary size. Encoding goes through ``gigatoken`` on the same
``tokenizer.json`` when it is installed (Rust, whole batches to flat arrays, no per-token Python
objects) after checking on a probe batch that it produces exactly the reference ids; otherwise
through the reference ``encode_batch``. Which one runs, and why the fast one does not, is
``backend`` / ``backend_reason`` (written into the tokenize summary: a missing ``gigatoken``
is never silent).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


class BatchEncoder:
    """Encode batches of texts to flat Megatron ids with EOD (``eos_id``) after every document."""

    def __init__(self, tokenizer_dir: str, probe: list[str] | None = None, allow_fast: bool = True,
                 quiet: bool = False):
        from tokenizer import load_tokenizer

        self.ref = load_tokenizer(tokenizer_dir)
        self.eos_id = int(self.ref.eos_id)
        self.vocab_size = int(self.ref.vocab_size)
        self.fast = None
        self.backend = "tokenizers"
        self.backend_reason = "the fast backend was not asked for" if not allow_fast else ""
        if allow_fast:
            try:
                import gigatoken

                fast = gigatoken.Tokenizer(str(Path(self.ref.directory) / "tokenizer.json"))
                probe = probe or ["안녕하세요, Mi:dm 토크나이저 확인용 문장입니다. 123 #@이름@#"]
                if self._fast_ids(fast, probe) == [list(x) for x in self.ref.encode_batch(probe)]:
                    self.fast, self.backend = fast, "gigatoken"
                    self.backend_reason = "gigatoken reproduces the reference ids on the probe batch"
                else:
                    self.backend_reason = "gigatoken ids differ from the reference tokenizer on the probe batch"
            except Exception as err:  # not installed / unsupported tokenizer.json: the reference path works
                self.backend_reason = f"gigatoken unavailable ({type(err).__name__}: {err})"
        if self.fast is None and not quiet:
            print(f"tokenize: using the reference `tokenizers` encoder: {self.backend_reason} "
                  "(install the [data] extra for gigatoken)", file=sys.stderr)

    @staticmethod
    def _fast_ids(fast, texts: list[str]) -> list[list[int]]:
        return [list(map(int, x)) for x in fast.encode_batch(texts).to_list()]

    def encode_with_eod(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(flat ids with EOD after each document, per-document lengths incl. EOD)."""
        if self.fast is not None:
            import awkward as ak

            arr = self.fast.encode_batch(texts)
            lengths = ak.to_numpy(ak.num(arr, axis=1)).astype(np.int64)
            flat = ak.to_numpy(ak.flatten(arr)).astype(np.int64)
        else:
            ids = self.ref.encode_batch(texts)
            lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
            flat = np.fromiter((i for x in ids for i in x), dtype=np.int64, count=int(lengths.sum()))
        ends = np.cumsum(lengths)
        flat = np.insert(flat, ends, self.eos_id)
        return flat, lengths + 1
