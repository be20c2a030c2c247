"""``midm tokenizer export``: the HF tokenizer directory that goes next to a converted model.

The files are regenerated from ``tokenizer.model`` (not copied), then checked: the directory must
load with ``transformers.AutoTokenizer`` offline and encode/decode a probe set exactly like the
SentencePiece model, and the chat template must render the Llama-3 header tokens as single ids.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .api import META_FILE
from .hf import control_pieces, load_proto, sp_decode_with_controls, sp_encode_with_controls, write_hf_files
from .layout import TOP_SPECIALS


def _probe() -> list[str]:
    return ["안녕하세요, 반갑습니다! Hello, world. 2024년 3월 15일",
            "  여러 칸   공백과\n\n줄바꿈\t탭 ",
            "#@이름@#님의 전화번호는 #@전화번호@#입니다.",
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n질문<|eot_id|>",
            "漢字 ㉠ 😀 ∑ \u00a0\u3000 <unk> <s>", ""] + [f"x{t}y {t}" for t in TOP_SPECIALS]


def export(tokenizer_dir: str | Path, output: str | Path, *, model_max_length: int = 32768) -> dict:
    src, out = Path(tokenizer_dir), Path(output)
    meta_path = src / META_FILE
    if not (src / "tokenizer.model").is_file() or not meta_path.is_file():
        raise FileNotFoundError(f"{src}: needs tokenizer.model and midm_tokenizer.json (from `midm tokenizer train`)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["model_max_length"] = model_max_length
    out.mkdir(parents=True, exist_ok=True)
    proto = load_proto(src / "tokenizer.model")
    files = write_hf_files(proto, out, meta, chat_template=True)
    for name in ("tokenizer.model", META_FILE):
        shutil.copy2(src / name, out / name)
    check = verify_hf_dir(out)
    summary = {"output": os.fspath(out), "files": files + ["tokenizer.model", META_FILE], **check}
    (out / "export_summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    sp_ids = check["sentencepiece_ids"]
    if (sp_ids["bos"], sp_ids["pad"], sp_ids["eos"]) != (meta["bos_id"], meta["pad_id"], meta["eos_id"]):
        raise RuntimeError(f"{src}/tokenizer.model declares bos/pad/eos {sp_ids}, not the ids of midm_tokenizer.json "
                           "(a tokenizer trained before control pieces were declared): re-train it with "
                           "`midm tokenizer train`")
    if check["encode_mismatches"] or check["decode_mismatches"] or not check["chat_template_ok"]:
        raise RuntimeError(f"exported tokenizer does not match the SentencePiece model: {check}")
    return summary


def verify_hf_dir(hf_dir: str | Path, texts: list[str] | None = None) -> dict:
    """Load ``hf_dir`` with AutoTokenizer (offline) and compare with its ``tokenizer.model``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import sentencepiece as spm
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(os.fspath(hf_dir))
    sp = spm.SentencePieceProcessor(model_file=os.fspath(Path(hf_dir) / "tokenizer.model"))
    texts = _probe() if texts is None else texts
    controls = control_pieces(sp)  # bos/pad/eos: matched in text by HF only (see tokenizer/hf.py)
    enc_bad = dec_bad = 0
    for t in texts:
        ids = sp_encode_with_controls(sp, t, controls)
        enc_bad += hf.encode(t, add_special_tokens=False) != ids
        dec_bad += (hf.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
                    != sp_decode_with_controls(sp, ids, controls))
    meta = json.loads((Path(hf_dir) / META_FILE).read_text(encoding="utf-8"))
    msgs = [{"role": "system", "content": "도움이 되는 비서"}, {"role": "user", "content": "안녕?"}]
    chat_ids = hf.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
    if isinstance(chat_ids, dict) or hasattr(chat_ids, "keys"):
        chat_ids = chat_ids["input_ids"]
    st = meta["special_tokens"]
    chat_ok = (chat_ids[:2] == [meta["bos_id"], st["<|start_header_id|>"]]
               and chat_ids.count(st["<|eot_id|>"]) == 2 and chat_ids.count(st["<|end_header_id|>"]) == 3)
    return {"texts": len(texts), "encode_mismatches": enc_bad, "decode_mismatches": dec_bad,
            "chat_template_ok": chat_ok, "bos_token_id": hf.bos_token_id, "eos_token_id": hf.eos_token_id,
            "pad_token_id": hf.pad_token_id, "hf_vocab_size": len(hf),
            "sentencepiece_ids": {"bos": sp.bos_id(), "pad": sp.pad_id(), "eos": sp.eos_id(), "unk": sp.unk_id()}}
