import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from midm.cli import main as midm_main
from tokenizer import load_tokenizer
from tokenizer.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_help_is_light_and_lists_subcommands():
    code = ("import sys, tokenizer.cli as c; c.build_parser(); "
            "heavy = {'sentencepiece', 'tokenizers', 'transformers', 'torch', 'kiwipiepy'} & set(sys.modules); "
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"
    with pytest.raises(SystemExit) as exc:
        midm_main(["tokenizer", "--help"])
    assert exc.value.code == 0


def test_train_with_config_file_eval_and_export(tmp_path, sample_inputs, heldout, capsys):
    cfg = tmp_path / "tok.yaml"
    cfg.write_text("ko_ratio: 0.6\ncharacter_coverage: 0.9995\n", encoding="utf-8")
    out = tmp_path / "tok"
    data_dir = Path(sample_inputs[0]).parent  # a directory input is walked
    assert main(["train", "--input", str(data_dir), "--vocab-size", "1536", "--output", str(out),
                 "--config", str(cfg)]) == 0
    summary = json.loads((out / "train_summary.json").read_text(encoding="utf-8"))
    assert summary["config"]["ko_ratio"] == 0.6 and summary["config"]["vocab_size"] == 1536
    assert summary["corpus"]["files"] == 4  # train + held-out samples in the directory

    plain = tmp_path / "plain"
    assert main(["train", "--plain", "--input", *sample_inputs, "--vocab-size", "1528", "--output", str(plain)]) == 0
    capsys.readouterr()
    ev = tmp_path / "ev"
    rc = main(["eval", "--tokenizer", str(out), "--text", f"ko={heldout['ko']}", f"en={heldout['en']}",
               "--baseline", f"tekken,mistral-32k,plain={plain / 'plain.model'}", "--output", str(ev)])
    assert rc == 0
    assert "| tokenizer |" in capsys.readouterr().out
    result = json.loads((ev / "eval.json").read_text(encoding="utf-8"))
    rows = {(r["tokenizer"], r["text"]): r for r in result["rows"]}
    assert set(rows) == {(t, x) for t in ("midm", "tekken", "mistral-32k", "plain") for x in ("ko", "en")}
    assert rows["midm", "ko"]["roundtrip_exact"] == 1.0 and rows["midm", "ko"]["unk_rate"] == 0.0
    assert rows["tekken", "ko"]["vocab_size"] == 131072 and rows["mistral-32k", "ko"]["vocab_size"] == 32768
    assert rows["tekken", "ko"]["tokens_per_char_vs_tekken"] == 1.0
    assert rows["plain", "en"]["roundtrip_exact"] < 1.0  # SentencePiece defaults strip/normalise whitespace
    for r in rows.values():
        assert 0 < r["tokens_per_char"] < 2 and r["tokens_per_word"] >= r["tokens_per_char"]
    assert (ev / "eval.md").read_text(encoding="utf-8").count("\n") == 2 + 8
    assert (ev / "eval.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    hf_dir = tmp_path / "hf"
    assert main(["export", "--tokenizer", str(out), "--output", str(hf_dir)]) == 0
    exported = json.loads((hf_dir / "export_summary.json").read_text(encoding="utf-8"))
    assert exported["encode_mismatches"] == 0 and exported["chat_template_ok"]
    assert load_tokenizer(hf_dir).encode("안녕하세요") == load_tokenizer(out).encode("안녕하세요")


def test_exported_chat_template_offline(tiny_dir, tmp_path):
    transformers = pytest.importorskip("transformers")
    from tokenizer.export import export

    export(tiny_dir, tmp_path / "hf")
    os.environ["HF_HUB_OFFLINE"] = "1"
    hf = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    text = hf.apply_chat_template([{"role": "user", "content": " 안녕? "}], add_generation_prompt=True, tokenize=False)
    assert text == ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n안녕?<|eot_id|>"
                    "<|start_header_id|>assistant<|end_header_id|>\n\n")
    tok = load_tokenizer(tmp_path / "hf")
    ids = tok.encode(text)
    st = tok.special_tokens
    assert ids[:2] == [0, st["<|start_header_id|>"]] and ids[-3:] == [st["<|end_header_id|>"], 4, 4]
    assert hf.encode(text, add_special_tokens=False) == ids
    assert hf.decode(ids) == text


def test_errors_are_reported_not_raised(tmp_path, capsys):
    assert main(["train", "--input", str(tmp_path / "nope.jsonl"), "--vocab-size", "2048",
                 "--output", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["train", "--input", str(tmp_path), "--vocab-size", "100", "--output", str(tmp_path / "o")]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("vocab_sise: 10\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("안녕\n", encoding="utf-8")
    assert main(["train", "--input", str(tmp_path / "a.txt"), "--output", str(tmp_path / "o"),
                 "--config", str(bad)]) == 2
    assert "unknown tokenizer config keys ['vocab_sise']" in capsys.readouterr().err
    assert main(["eval", "--tokenizer", str(tmp_path), "--text", str(tmp_path / "a.txt"), "--baseline", ""]) == 2
    assert "not a midm tokenizer directory" in capsys.readouterr().err


def test_train_never_replaces_a_tokenizer_without_overwrite(tiny_dir, sample_inputs, tmp_path, capsys):
    """Existing .bin/.idx files were made with the tokenizer in --output: refused before any training."""
    out = tmp_path / "tok"
    shutil.copytree(tiny_dir, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    argv = ["train", "--input", *sample_inputs, "--vocab-size", "1536", "--output", str(out)]
    assert midm_main(["tokenizer", *argv]) == 2
    err = capsys.readouterr().err
    assert f"{out} already holds a tokenizer (tokenizer.model, midm_tokenizer.json, tokenizer.json)" in err
    assert "--overwrite" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert main(["train", "--plain", *argv[1:]]) == 0  # plain.model is another file: nothing is replaced
    assert main(["train", "--plain", *argv[1:]]) == 2
    assert main([*argv, "--overwrite"]) == 0
    assert json.loads((out / "midm_tokenizer.json").read_text(encoding="utf-8"))["vocab_size"] != \
        json.loads(before["midm_tokenizer.json"])["vocab_size"]
