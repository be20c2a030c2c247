"""Offline `midm eval` throughput on the full KLUE-NLI and KorNLI dev sets (../shared/data).

Writes both dev sets in the Hub layout (``DIR/klue/klue``, ``DIR/kakaobrain/kor_nli``) to a temp
directory, then runs the real runner (lm-eval HF backend) on ``--model`` or, by default, on a
small random Llama with a BPE tokenizer trained on the dev text (scores are then chance level:
this measures the pipeline, not a model). Prints one JSON line.

    python benchmarks/eval_offline_nli.py [--model HF_DIR] [--limit 300] [--batch-size 8]
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data" / "benchmarks"
LABELS = {"entailment": 0, "neutral": 1, "contradiction": 2}


def write_hub_layout(root: Path) -> dict[str, int]:
    klue = json.loads((SHARED / "klue_dev" / "klue-nli-v1.1_dev.json").read_text(encoding="utf-8"))
    rows = {"klue/klue": ("nli", [{"premise": d["premise"], "hypothesis": d["hypothesis"],
                                   "label": LABELS[d["gold_label"]]} for d in klue])}
    with open(SHARED / "kornlu" / "KorNLI" / "xnli.dev.ko.tsv", encoding="utf-8") as f:
        kornli = [{"premise": r["sentence1"], "hypothesis": r["sentence2"], "label": LABELS[r["gold_label"]]}
                  for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    rows["kakaobrain/kor_nli"] = ("xnli", kornli)
    for hub, (config, docs) in rows.items():
        (root / hub / config).mkdir(parents=True)
        (root / hub / "README.md").write_text(
            f"---\nconfigs:\n- config_name: {config}\n  data_files:\n  - split: validation\n"
            f"    path: {config}/validation.jsonl\n---\n")
        with open(root / hub / config / "validation.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)
    return {hub: len(docs) for hub, (_, docs) in rows.items()}


def random_model(root: Path, texts: list[str]) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<pad>", "<|end_of_text|>"]
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=8000, special_tokens=specials,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=specials[0], pad_token=specials[1],
                                     eos_token=specials[2])
    hf_tok.save_pretrained(root)
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(hf_tok), hidden_size=256, intermediate_size=704, num_hidden_layers=4,
                                 num_attention_heads=8, num_key_value_heads=2, head_dim=32,
                                 max_position_embeddings=1024, tie_word_embeddings=True)).save_pretrained(root)
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--limit", type=float, default=300, help="examples per task (0 = all)")
    ap.add_argument("--batch-size", type=int, default=8)
    args = ap.parse_args()
    from evaluation import registry, runner

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sizes = write_hub_layout(tmp / "data")
        texts = [json.loads(line)["premise"] for p in (tmp / "data").rglob("*.jsonl")
                 for line in p.read_text(encoding="utf-8").splitlines()]
        model = args.model or random_model(tmp / "model", texts)
        started = time.time()
        summary = runner.run(model, registry.resolve(["klue_nli_mc", "kornli_mc"]), data_dir=tmp / "data",
                             output=tmp / "out" / "results.json", limit=args.limit or None,
                             batch_size=args.batch_size, dtype="float32", bootstrap_iters=0)
        elapsed = time.time() - started
    import torch

    docs = sum(b["n_samples"] for b in summary["benchmarks"].values())
    print(json.dumps({
        "benchmark": "eval_offline_nli", "model": str(args.model) if args.model else "random-llama-4x256",
        "dev_sizes": sizes, "docs": docs, "loglikelihood_requests": 3 * docs, "elapsed_s": round(elapsed, 2),
        "requests_per_s": round(3 * docs / elapsed, 1), "batch_size": args.batch_size,
        "scores": {k: v["score"] for k, v in summary["benchmarks"].items()}, "torch_threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
