"""HF ↔ Megatron conversion: the mapping's transforms, bit-exact round trips for several geometries
(Mini-shaped: head_dim × heads ≠ hidden with tied embeddings; GQA untied; MHA), logits of Megatron
vs `transformers` on the converted model, the released Mini config.json, checkpoints saved
under TP=2 and PP=2 converting to the same HF weights, and `from-hf`/`reshard` refusing an
``--output`` that holds a checkpoint unless ``--overwrite`` (which replaces it whole).

Megatron runs in subprocesses (this file is also the worker: ``python test_hf_convert.py …``),
which keeps its process-global state and CPU patches out of the pytest process.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO

HERE = Path(__file__).resolve()
TOKENS = torch.tensor([[5, 17, 42, 99, 7, 250, 3, 11, 64, 128, 1, 200, 9, 33, 77, 150]])

# name: HF geometry; padded vocab on the Megatron side; HF vocab written back by to-hf
CASES = {
    "mini_tied": dict(hidden_size=48, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                      tie_word_embeddings=True, vocab_size=300, padded=384),
    "gqa_untied": dict(hidden_size=64, num_attention_heads=8, num_key_value_heads=2, head_dim=8,
                       tie_word_embeddings=False, vocab_size=300, padded=384),
    "mha_untied": dict(hidden_size=40, num_attention_heads=4, num_key_value_heads=4, head_dim=12,
                       tie_word_embeddings=False, vocab_size=256, padded=256),
}


def make_hf_model(out: Path, case: dict, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    geo = {k: v for k, v in case.items() if k != "padded"}
    config = LlamaConfig(intermediate_size=96, num_hidden_layers=2, max_position_embeddings=64,
                         rope_theta=8_000_000.0, rms_norm_eps=1e-5, bos_token_id=0, eos_token_id=2, **geo)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # every tensor random, norms included, so a swapped norm cannot hide
        for p in model.parameters():
            p.normal_(0.0, 0.4 if p.dim() == 2 else 1.0)
    model.save_pretrained(out)
    return model


def load_hf_dir(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    state = {}
    for f in path.glob("*.safetensors"):
        state.update(load_file(str(f)))
    return state


def run_python(args: list[str], nproc: int = 1, timeout: int = 300) -> None:
    import os
    import socket

    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    if nproc == 1:
        cmd = [sys.executable, str(HERE), *args]
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", f"--master_port={port}",
               str(HERE), *args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Tiny models: one intra-op thread (shared fixture in tests/conftest.py)."""


# ---------------------------------------------------------------- pure mapping (no Megatron)

def _geometry(case: dict):
    from megatron_ext.hf.mapping import Geometry

    return Geometry(num_layers=2, hidden_size=case["hidden_size"], ffn_hidden_size=96,
                    num_attention_heads=case["num_attention_heads"], num_query_groups=case["num_key_value_heads"],
                    head_dim=case["head_dim"], padded_vocab_size=case["padded"], hf_vocab_size=case["vocab_size"],
                    tie_embeddings=case["tie_word_embeddings"])


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("naming", ["local", "te"])
def test_mapping_round_trip_is_bit_exact(tmp_path, name, naming):
    from megatron_ext.hf.llama import RULES
    from megatron_ext.hf.mapping import hf_to_megatron, megatron_to_hf

    case = CASES[name]
    hf = make_hf_model(tmp_path, case).state_dict()
    hf = {k: v for k, v in hf.items() if not (case["tie_word_embeddings"] and k == "lm_head.weight")}
    meg = hf_to_megatron(hf, _geometry(case), RULES, naming=naming)
    norm_key = "decoder.layers.0.input_layernorm.weight" if naming == "local" else \
        "decoder.layers.0.self_attention.linear_qkv.layer_norm_weight"
    assert norm_key in meg
    assert meg["embedding.word_embeddings.weight"].shape[0] == case["padded"]
    assert ("output_layer.weight" in meg) != case["tie_word_embeddings"]
    back = megatron_to_hf(meg, _geometry(case), RULES)
    assert back.keys() == hf.keys()
    for k in hf:
        assert torch.equal(back[k], hf[k]), k


def test_qkv_layout_is_grouped_per_kv_head():
    """Megatron's fused QKV rows: for each KV group, its query heads, then its K head, then its V head."""
    from megatron_ext.hf.mapping import Geometry, qkv_fuse

    g = Geometry(num_layers=1, hidden_size=3, ffn_hidden_size=4, num_attention_heads=4, num_query_groups=2,
                 head_dim=2, padded_vocab_size=8, hf_vocab_size=8, tie_embeddings=True)
    q = torch.arange(4).repeat_interleave(2).float().unsqueeze(1).expand(8, 3)        # row value = query head
    k = (10 + torch.arange(2)).repeat_interleave(2).float().unsqueeze(1).expand(4, 3)  # 10 + kv head
    v = (20 + torch.arange(2)).repeat_interleave(2).float().unsqueeze(1).expand(4, 3)  # 20 + kv head
    rows = qkv_fuse(q, k, v, g)[:, 0].tolist()
    assert rows == [0, 0, 1, 1, 10, 10, 20, 20, 2, 2, 3, 3, 11, 11, 21, 21]


def test_mapping_refuses_mismatched_or_unmapped_tensors(tmp_path):
    from megatron_ext.hf.llama import RULES
    from megatron_ext.hf.mapping import MappingError, hf_to_megatron

    case = CASES["gqa_untied"]
    hf = make_hf_model(tmp_path, case).state_dict()
    with pytest.raises(MappingError, match="q_proj"):  # head_dim wrong for these weights
        hf_to_megatron(hf, _geometry({**case, "head_dim": 16}), RULES)
    with pytest.raises(MappingError, match="not covered"):
        hf_to_megatron({**hf, "model.layers.0.self_attn.q_proj.bias": torch.zeros(64)}, _geometry(case), RULES)


def test_mini_recipe_exports_exactly_the_published_config():
    from transformers import LlamaConfig

    from megatron_ext.hf_convert import hf_config
    from recipes import get_recipe

    published = json.loads((REPO / "evaluation" / "paper" / "midm2_mini_config.json").read_text())
    ours = hf_config(get_recipe("midm_mini").model, vocab_size=131_392, dtype="bf16")
    assert list(ours) == list(published) and ours == published
    loaded = LlamaConfig(**ours)  # and transformers reads it as intended
    assert (loaded.head_dim, loaded.hidden_size, loaded.rope_parameters["rope_theta"]) == (128, 1792, 8_000_000)


def test_from_hf_refuses_what_our_model_cannot_represent():
    from megatron_ext.hf_import import ConvertError, model_fields_from_hf

    base = {"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 8, "intermediate_size": 16,
            "num_attention_heads": 2, "max_position_embeddings": 32}
    assert model_fields_from_hf(base)["kv_channels"] == 4  # head_dim absent: hidden / heads
    for bad, message in [({"model_type": "mistral"}, "model_type"), ({"attention_bias": True}, "biases"),
                         ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, "rope scaling")]:
        with pytest.raises(ConvertError, match=message):
            model_fields_from_hf({**base, **bad})


def test_from_hf_picks_the_recipe_with_the_same_geometry():
    from megatron_ext.hf_import import _base_recipe, model_fields_from_hf
    from recipes import get_recipe

    m = get_recipe("tiny_mini").model
    fields = model_fields_from_hf({"model_type": "llama", "num_hidden_layers": m.num_layers,
                                   "hidden_size": m.hidden_size, "intermediate_size": m.ffn_hidden_size,
                                   "num_attention_heads": m.num_attention_heads,
                                   "num_key_value_heads": m.num_query_groups, "head_dim": m.kv_channels,
                                   "tie_word_embeddings": True, "max_position_embeddings": 1024})
    assert [(r.name, matched) for r, matched in [_base_recipe(None, fields),
                                                  _base_recipe(None, {**fields, "hidden_size": 72}),
                                                  _base_recipe("tiny", fields)]] == \
        [("tiny_mini", True), ("tiny", False), ("tiny", False)]


# ---------------------------------------------------------------- through Megatron (subprocess worker)

@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("convert")
    for name, case in CASES.items():
        make_hf_model(root / name / "hf", case)
    make_tokenizer(root / "tokenizer")
    shutil.copytree(root / "tokenizer", root / "mini_tied" / "hf", dirs_exist_ok=True)  # an HF repo ships its tokenizer
    torch.save(TOKENS, root / "tokens.pt")
    run_python(["convert", str(root)])
    return root


def make_tokenizer(out: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<|begin_of_text|>", "<pad>", "<|end_of_text|>", "<|eot_id|>"] + [f"w{i}" for i in range(286)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="w0"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=words[0], pad_token=words[1], eos_token=words[2],
                            additional_special_tokens=[words[3]]).save_pretrained(out)


@pytest.mark.parametrize("name", sorted(CASES))
def test_hf_megatron_hf_round_trip_is_bit_exact(converted, name):
    case = CASES[name]
    original = load_hf_dir(converted / name / "hf")
    if case["tie_word_embeddings"]:
        original.pop("lm_head.weight", None)
    back = load_hf_dir(converted / name / "hf_back")
    assert back.keys() == original.keys()
    for k in original:
        assert torch.equal(back[k], original[k]), k
    config = json.loads((converted / name / "hf_back" / "config.json").read_text())
    assert config["head_dim"] == case["head_dim"] and config["vocab_size"] == case["vocab_size"]
    assert config["tie_word_embeddings"] == case["tie_word_embeddings"]
    assert config["rope_theta"] == 8_000_000 and config["rms_norm_eps"] == 1e-5
    recipe = json.loads((converted / name / "ckpt" / "iter_0000000" / "recipe.json").read_text())
    assert recipe["model"]["vocab_size"] == case["padded"] and recipe["model"]["kv_channels"] == case["head_dim"]


def test_round_trip_restores_the_exported_padding_not_the_matching_recipes(converted):
    """`tiny`'s geometry with a 300-id tokenizer's 384 rows (tiny's recipe says 4,096): to-hf trimmed to
    300 (without --tokenizer), then from-hf without flags gets the 384 rows to-hf recorded — 4,096 would
    add 3,712 zero rows (logit 0 each) and refuse `midm data sft|prefs` output of that same tokenizer —
    and the tokenizer fingerprint to-hf recorded (the export holds no tokenizer files)."""
    d = converted / "tiny_384"
    assert json.loads((d / "hf_trimmed" / "config.json").read_text())["vocab_size"] == 300
    assert not (d / "hf_trimmed" / "tokenizer.json").exists()
    recipe = json.loads((d / "ckpt_back" / "iter_0000000" / "recipe.json").read_text())
    assert recipe["name"] == "tiny_from_hf" and recipe["model"]["vocab_size"] == 384
    from tokenizer.fingerprint import fingerprint

    state = json.loads((d / "ckpt_back" / "iter_0000000" / "trainer_state.json").read_text())
    assert state["tokenizer_fingerprint"] == fingerprint(converted / "tokenizer")


def test_sharded_output_has_an_index_and_reads_back(converted):
    out = converted / "gqa_untied" / "hf_back"
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    from megatron_ext.hf_import import read_hf

    _, state = read_hf(out)
    assert state.keys() == index["weight_map"].keys()


def test_padded_vocab_kept_by_default_and_tokenizer_exported(converted):
    """Default keeps Megatron's padded rows (as the released model does); the tokenizer travels along."""
    out = converted / "mini_tied" / "hf_padded"
    config = json.loads((out / "config.json").read_text())
    assert config["vocab_size"] == 384
    emb = load_hf_dir(out)["model.embed_tokens.weight"]
    original = load_hf_dir(converted / "mini_tied" / "hf")["model.embed_tokens.weight"]
    assert torch.equal(emb[:300], original) and not emb[300:].any()
    assert json.loads((out / "generation_config.json").read_text())["eos_token_id"] == [2, 3]
    from transformers import AutoTokenizer

    assert len(AutoTokenizer.from_pretrained(str(out))) == 290
    assert json.loads((out / "midm_conversion.json").read_text())["hf_vocab_size"] == 384
    # from-hf recorded the HF repo's tokenizer; to-hf --tokenizer with that same tokenizer was accepted
    from tokenizer.fingerprint import fingerprint

    state = json.loads((converted / "mini_tied" / "ckpt" / "iter_0000000" / "trainer_state.json").read_text())
    assert state["tokenizer_fingerprint"] == fingerprint(converted / "tokenizer") == fingerprint(out)
    assert json.loads((out / "midm_conversion.json").read_text())["tokenizer_fingerprint"] == fingerprint(out)
    assert "tokenizer_fingerprint" not in json.loads(  # an HF repo without a tokenizer: unknown
        (converted / "gqa_untied" / "ckpt" / "iter_0000000" / "trainer_state.json").read_text())


@pytest.mark.parametrize("name", sorted(CASES))
def test_megatron_and_transformers_logits_agree(converted, name):
    from transformers import LlamaForCausalLM

    megatron_logits = torch.load(converted / name / "megatron_logits.pt", weights_only=True)
    model = LlamaForCausalLM.from_pretrained(str(converted / name / "hf_back"), dtype=torch.float32).eval()
    with torch.no_grad():
        hf_logits = model(TOKENS).logits
    vocab = CASES[name]["vocab_size"]
    assert megatron_logits.shape[-1] == CASES[name]["padded"]
    assert torch.allclose(megatron_logits[..., :vocab], hf_logits, atol=1e-4, rtol=0), \
        (megatron_logits[..., :vocab] - hf_logits).abs().max()


def test_convert_cli_reports_bad_input(tmp_path, monkeypatch, capsys):
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "midm", "convert", "to-hf", "--checkpoint", str(tmp_path),
                           "--output", str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 2 and "is not a checkpoint" in proc.stderr

    # In process, before any process group or weight: a checkpoint holding only its recipe is enough to
    # show that a bad --tokenizer is refused first (and never handed to transformers, so never to the Hub),
    # and that reshard to TP=2 without torchrun says how to launch it.
    import transformers

    from midm.cli import main
    from recipes import get_recipe, recipe_to_dict

    ckpt = tmp_path / "ckpt"
    (ckpt / "iter_0000001").mkdir(parents=True)
    (ckpt / "iter_0000001" / "recipe.json").write_text(json.dumps(recipe_to_dict(get_recipe("tiny_mini"))))
    (ckpt / "latest").write_text("iter_0000001")
    (tmp_path / "runs" / "tiny_mini").mkdir(parents=True)  # a directory, but not a tokenizer's
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "tokenizer.json").write_text("{}")  # what transformers cannot load
    out = tmp_path / "hf"
    assert main(["convert", "to-hf", "--checkpoint", str(ckpt), "--output", str(out), "--tokenizer",
                 str(tmp_path / "broken")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "transformers cannot load it as a tokenizer" in err, err
    loads = []
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: loads.append(a))
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    for tokenizer, says in ((tmp_path / "runs", "is not a tokenizer directory: it holds none of tokenizer.json"),
                            (tmp_path / "nope", "does not exist")):
        assert main(["convert", "to-hf", "--checkpoint", str(ckpt), "--output", str(out),
                     "--tokenizer", f"{tokenizer}/"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"--tokenizer {tokenizer} {says}" in err, err
    assert not loads and not out.exists()
    assert main(["convert", "reshard", "--checkpoint", str(ckpt), "--output", str(out), "--tp", "2", "--pp", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs 2 processes" in err and "this job has 1" in err, err
    assert f"`torchrun --nproc_per_node 2 -m midm convert reshard --checkpoint {ckpt} --output {out} --tp 2 " \
           "--pp 1`" in err
    assert not out.exists()


def test_from_hf_and_reshard_refuse_an_existing_checkpoint_unless_overwrite(converted, tmp_path, capsys):
    """The user's case: `from-hf` onto a copy of a training run's checkpoints (``latest`` → iter_60)."""
    from midm.cli import main as midm_main
    from tests.megatron_ext.surgery_fixtures import occupied_copy, plain_tensors, tree_bytes

    run = occupied_copy(converted / "mini_tied" / "ckpt", tmp_path / "run")
    (run / "iter_0000060").mkdir()
    (run / "latest").write_text("iter_0000060")
    before = tree_bytes(run)
    refused = (f"midm convert: error: --output {run} already holds a checkpoint (latest → iter_0000060); choose a "
               "new directory, or pass --overwrite to replace it (the new checkpoint replaces the whole directory "
               "once it is complete)\n")
    # reshard's --checkpoint names nothing: a refusal after reading the source would fail on that instead
    for argv in (["from-hf", "--hf", str(converted / "mini_tied" / "hf"), "--output", str(run)],
                 ["reshard", "--checkpoint", str(tmp_path / "absent"), "--output", str(run), "--tp", "1", "--pp", "1"]):
        assert midm_main(["convert", *argv]) == 2
        assert capsys.readouterr().err == refused
    assert tree_bytes(run) == before

    # --overwrite (the worker ran `from-hf … --overwrite` onto such a copy): the root replaced whole
    over = converted / "mini_tied" / "ckpt_over"
    assert sorted(p.name for p in over.iterdir()) == ["iter_0000000", "latest", "midm_conversion.json"]
    assert (over / "latest").read_text() == "iter_0000000"
    assert json.loads((over / "midm_conversion.json").read_text())["output"] == str(over / "iter_0000000")
    assert not [p.name for p in over.parent.iterdir() if p.name.startswith(".")]  # no staging or old copy left
    new, ref = plain_tensors(over), plain_tensors(converted / "mini_tied" / "ckpt")
    assert new.keys() == ref.keys() and all(torch.equal(new[k], ref[k]) for k in ref)


def readme_reshard_command() -> list[str]:
    """README.md's `torchrun --nproc_per_node 2 -m midm convert reshard …` line, as argv after ``midm``."""
    import re

    line = next(line for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines()
                if line.startswith("torchrun --nproc_per_node 2 -m midm convert reshard "))
    return re.split(r"\s+", line.split("#", 1)[0].split(" -m midm ", 1)[1].strip())


@pytest.mark.slow
def test_tp2_and_pp2_checkpoints_convert_to_the_same_hf_weights(converted, tmp_path):
    """TP=2 via the README's `midm convert reshard` command (its paths swapped for these), PP=2 via the API."""
    ckpt = converted / "mini_tied" / "ckpt"
    argv = readme_reshard_command()
    assert argv[:2] == ["convert", "reshard"] and argv[argv.index("--tp") + 1] == "2"
    argv[argv.index("--checkpoint") + 1], argv[argv.index("--output") + 1] = str(ckpt), str(tmp_path / "tp2pp1")
    run_python(["reshard", str(ckpt), str(tmp_path), json.dumps(argv[1:])], nproc=2)
    original = load_hf_dir(converted / "mini_tied" / "hf")
    original.pop("lm_head.weight", None)
    for layout in ("tp2pp1", "tp1pp2"):
        state = json.loads((tmp_path / layout / "iter_0000000" / "trainer_state.json").read_text())
        saved = state["layout"]
        assert (saved["tp"], saved["pp"]) == (int(layout[2]), int(layout[5]))
        if layout == "tp2pp1":  # reshard carries the source's tokenizer forward
            source = json.loads((ckpt / "iter_0000000" / "trainer_state.json").read_text())
            assert state["tokenizer_fingerprint"] == source["tokenizer_fingerprint"]
        out = load_hf_dir(tmp_path / f"hf_{layout}")
        assert out.keys() == original.keys()
        for k in original:
            assert torch.equal(out[k], original[k]), (layout, k)


# ---------------------------------------------------------------- worker (runs in subprocesses)

def _worker_convert(root: Path) -> None:
    from megatron_ext import hf_convert, hf_import, loading
    from megatron_ext.commands.convert import main as convert_main

    for name, case in CASES.items():
        d = root / name
        # mha_untied: no --padded-vocab-size and no recipe of this geometry, so the HF vocab is kept
        padded = None if case["padded"] == case["vocab_size"] else case["padded"]
        hf_import.from_hf(d / "hf", d / "ckpt", padded_vocab_size=padded)
        shard = ["--max-shard-size", "20KB"] if name == "gqa_untied" else []
        assert convert_main(["to-hf", "--checkpoint", str(d / "ckpt"), "--output", str(d / "hf_back"),
                                "--dtype", "fp32", "--vocab-size", str(case["vocab_size"]), *shard]) == 0
        model, _ = loading.load_model(d / "ckpt", dtype="fp32", use_te=None)
        tokens = torch.load(root / "tokens.pt", weights_only=True)
        with torch.no_grad():
            logits = model(tokens, torch.arange(tokens.shape[1]).unsqueeze(0), attention_mask=None)
        torch.save(logits, d / "megatron_logits.pt")
    hf_convert.to_hf(root / "mini_tied" / "ckpt", root / "mini_tied" / "hf_padded", dtype="fp32",
                     tokenizer_dir=root / "tokenizer")
    _tiny_trimmed_round_trip(root / "tiny_384", convert_main)
    # `from-hf --overwrite` onto a copy of a training run's checkpoints (latest → iter_0000060)
    over = root / "mini_tied" / "ckpt_over"
    shutil.copytree(root / "mini_tied" / "ckpt", over)
    (over / "iter_0000060").mkdir()
    (over / "latest").write_text("iter_0000060")
    assert convert_main(["from-hf", "--hf", str(root / "mini_tied" / "hf"), "--output", str(over), "--overwrite",
                         "--padded-vocab-size", str(CASES["mini_tied"]["padded"])]) == 0


def _tiny_trimmed_round_trip(d: Path, convert_main) -> None:
    """A `tiny`-geometry model with 384 padded rows (a 300-id tokenizer) → HF trimmed to 300 → Megatron."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from megatron_ext import hf_import
    from recipes import get_recipe

    m = get_recipe("tiny").model
    config = LlamaConfig(hidden_size=m.hidden_size, intermediate_size=m.ffn_hidden_size, num_hidden_layers=m.num_layers,
                         num_attention_heads=m.num_attention_heads, num_key_value_heads=m.num_query_groups,
                         head_dim=m.kv_channels, max_position_embeddings=m.max_position_embeddings, vocab_size=384,
                         tie_word_embeddings=False, rms_norm_eps=1e-5)
    LlamaForCausalLM(config).save_pretrained(d / "hf")
    shutil.copytree(d.parent / "tokenizer", d / "hf", dirs_exist_ok=True)  # exported below without it
    hf_import.from_hf(d / "hf", d / "ckpt", padded_vocab_size=384)
    assert convert_main(["to-hf", "--checkpoint", str(d / "ckpt"), "--output", str(d / "hf_trimmed"),
                         "--vocab-size", "300"]) == 0
    assert convert_main(["from-hf", "--hf", str(d / "hf_trimmed"), "--output", str(d / "ckpt_back")]) == 0


def _worker_reshard(ckpt: Path, out: Path, cli_argv: list[str]) -> None:
    from megatron.core import parallel_state

    from megatron_ext import hf_convert, parallel
    from megatron_ext.checkpoint_output import OutputExistsError
    from megatron_ext.commands.convert import main as convert_main

    # `midm convert reshard` as the README runs it; its closing parallel.destroy() would end the gloo group
    # this worker still needs (a group cannot be started twice under one torchrun), so only the model-parallel
    # groups are torn down here
    parallel.destroy, destroy = parallel_state.destroy_model_parallel, parallel.destroy
    try:
        assert convert_main(cli_argv) == 0
        try:  # the same command again: refused on every rank, before anything is read
            convert_main(cli_argv)
            raise AssertionError("a second reshard onto its own output was not refused")
        except OutputExistsError as err:
            assert "already holds a checkpoint" in str(err) and "--overwrite" in str(err)
        assert convert_main([*cli_argv, "--overwrite"]) == 0  # replaced: the checks below read this one
    finally:
        parallel.destroy = destroy
    hf_convert.reshard(ckpt, out / "tp1pp2", 1, 2)
    parallel_state.destroy_model_parallel()
    for layout in ("tp2pp1", "tp1pp2"):  # world of 2 at TP=PP=1: both ranks load, rank 0 writes
        hf_convert.to_hf(out / layout, out / f"hf_{layout}", dtype="fp32", vocab_size=300)
        parallel_state.destroy_model_parallel()


if __name__ == "__main__":  # the guard dist-checkpointing's writer processes need
    sys.path.insert(0, str(REPO))
    if sys.argv[1] == "convert":
        _worker_convert(Path(sys.argv[2]))
    else:
        _worker_reshard(Path(sys.argv[2]), Path(sys.argv[3]), json.loads(sys.argv[4]))
    from megatron_ext import parallel

    parallel.destroy()
