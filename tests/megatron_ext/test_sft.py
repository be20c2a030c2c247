"""SFT on Megatron-Core: packed equals unpacked per conversation (PP=1, TP=2, PP=2), the same
gradient (one objective), attention never crossing a conversation, and `midm sft` resuming after
kill -9 with identical losses."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import REPO, TEST_DATA
from tests.megatron_ext.conftest import free_port, losses, midm_cmd, read_metrics, run_env, run_midm
from tests.megatron_ext.test_train import _wait_for_step

# fp32 on CPU: packed and unpacked differ only in reduction order over masked (exactly zero) terms;
# measured max |Δ per-conversation loss| 1.3e-6 (PP=1, TP=2), 7.6e-7 (PP=2); |Δ grad| ≤ 6e-8.
LOSS_TOL, GRAD_TOL = 1e-5, 1e-6


@pytest.fixture(scope="module")
def sft_data(chat_tokenizer_dir, tmp_path_factory):
    from data_prep.sft.build import build

    out = tmp_path_factory.mktemp("sft") / "data"
    build([str(TEST_DATA / "sft" / n) for n in ("chatbot.jsonl", "edge_cases.jsonl")], out, str(chat_tokenizer_dir),
          seq_length=256, valid_fraction=0.1)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("tp,pp", [(1, 1), (2, 1), (1, 2)], ids=["pp1", "tp2", "pp2"])
def test_packed_equals_unpacked_and_attention_stays_inside(sft_data, tp, pp, tmp_path):
    out = tmp_path / "probe.json"
    probe = [str(REPO / "tests" / "megatron_ext" / "sft_probe.py"), str(sft_data), str(tp), str(pp), str(out)]
    nproc = tp * pp
    cmd = [sys.executable, *probe] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", f"--master_port={free_port()}",
        *probe]
    proc = subprocess.run(cmd, cwd=REPO, env=run_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    r = json.loads(out.read_text())
    assert r["conversations"] >= 6
    assert r["max_abs_loss_diff"] < LOSS_TOL, r["per_conversation"]
    assert r["grad_max_abs_diff"] < GRAD_TOL and r["grad_max_abs"] > 1e-3
    # replacing conversation A changes A's own loss but not one bit of B's (on every pipeline stage)
    assert r["a_loss_changed"] > 1e-3
    assert r["b_loss_with_a"] == r["b_loss_with_a_replaced"]
    if pp == 1:
        assert r["b_logits_max_abs_diff"] == 0.0 and r["a_logits_max_abs_diff"] > 1e-3
    assert r["rope_follows_position_ids"] and r["position_ids_restart"] >= 3


def _sft_args(data, run_dir, *extra):
    return ["sft", "--recipe", "tiny_sft", "--data", str(data), "--set", "model.vocab_size=2048",
            "--set", "model.num_layers=2", "--set", "sft.epochs=none", "--set", "train.steps=6",
            "--set", "checkpoint.save_interval=3", "--set", "train.eval_interval=3",
            "--set", f"logging.dir={run_dir.parent}", "--set", f"logging.run_name={run_dir.name}",
            "--set", "logging.tensorboard=false", *extra]


@pytest.fixture(scope="module")
def sft_baseline(sft_data, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("sft_runs") / "baseline"
    run_midm(_sft_args(sft_data, run_dir))
    return run_dir


def test_sft_trains_validates_and_checkpoints(sft_baseline, chat_tokenizer_dir):
    records = read_metrics(sft_baseline)
    assert [r["step"] for r in records] == list(range(1, 7))
    assert records[-1]["loss"] < records[0]["loss"]
    assert [r["step"] for r in records if "val_loss" in r] == [3, 6]
    summary = json.loads((sft_baseline / "summary.json").read_text())
    assert summary["steps"] == 6 and summary["recipe"] == "tiny_sft"
    saved = json.loads((sft_baseline / "checkpoints" / "iter_0000006" / "recipe.json").read_text())
    assert saved["sft"]["dataset"] and saved["scheduler"]["style"] == "linear"
    state = json.loads((sft_baseline / "checkpoints" / "iter_0000006" / "trainer_state.json").read_text())
    from megatron_ext.resume_check import dataset_record

    assert state["data_blend"] == dataset_record(saved["sft"]["dataset"])  # what a resume compares
    from tokenizer.fingerprint import fingerprint

    # the tokenizer the data's index.json records, kept with the weights (megatron_ext/tokenizer_check.py)
    assert (state["tokenizer"], state["tokenizer_fingerprint"]) == (str(chat_tokenizer_dir),
                                                                    fingerprint(chat_tokenizer_dir))


def test_resume_on_data_of_another_tokenizer_is_refused(sft_baseline, other_chat_tokenizer_dir, tmp_path):
    """checkpoint.allow_data_change lets a resume continue on other data, not on another tokenizer's:
    that needs checkpoint.allow_tokenizer_change as well (checked before any process group)."""
    from data_prep.sft.build import build
    from megatron_ext.checkpoint import read_recipe
    from megatron_ext.resume_check import check_resume
    from megatron_ext.tokenizer_check import TokenizerMismatchError

    other = tmp_path / "other"
    build([str(TEST_DATA / "sft" / "chatbot.jsonl")], other, str(other_chat_tokenizer_dir), seq_length=256)
    ckpt = sft_baseline / "checkpoints"
    recipe = read_recipe(ckpt)
    recipe.sft.dataset, recipe.checkpoint.allow_data_change = str(other), True
    with pytest.raises(TokenizerMismatchError) as err:
        check_resume(recipe, ckpt)
    assert (f"this recipe's data ({other}) was made with tokenizer {other_chat_tokenizer_dir}" in str(err.value)
            and f"but checkpoint {ckpt / 'iter_0000006'} was trained with tokenizer " in str(err.value))
    recipe.checkpoint.allow_tokenizer_change = True
    assert [d.field for d in check_resume(recipe, ckpt) if d.kind == "data"] == ["dataset contents"]


def test_sft_data_made_again_in_place_is_a_data_change_on_resume(sft_data, tmp_path):
    import shutil

    from megatron_ext.resume_check import compare, dataset_record
    from recipes import get_recipe

    data = tmp_path / "data"
    shutil.copytree(sft_data, data)
    saved = get_recipe("tiny_sft", [f"sft.dataset={data}"])
    state = {"data_blend": dataset_record(data)}
    same = get_recipe("tiny_sft", [f"sft.dataset={tmp_path}/./data/"])  # another spelling of the same folder
    assert not [d for d in compare(saved, state, same) if d.kind == "data"]
    tokens = next(data.glob("train-*/tokens.npy"))
    raw = bytearray(tokens.read_bytes())
    raw[-1] ^= 1  # other token ids, same size (what `midm data sft` over other conversations can give)
    tokens.write_bytes(bytes(raw))
    changed = [d for d in compare(saved, state, same) if d.kind == "data"]
    assert [d.field for d in changed] == ["dataset contents"]
    other = get_recipe("tiny_sft", [f"sft.dataset={sft_data}"])  # another folder, same contents as at the start
    assert [d.field for d in compare(saved, state, other) if d.kind == "data"] == ["dataset contents"]


@pytest.mark.slow
def test_sft_kill9_then_resume_reproduces_losses_exactly(sft_baseline, sft_data, tmp_path):
    run_dir = tmp_path / "killed"
    args = _sft_args(sft_data, run_dir)
    proc = subprocess.Popen(midm_cmd(args), cwd=REPO, env=run_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for_step(run_dir, 4, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (run_dir / "checkpoints" / "latest").read_text() == "iter_0000003"
    run_midm(args)  # --resume auto
    assert losses(run_dir) == losses(sft_baseline)


def test_sft_errors_are_clear(sft_data, tmp_path):
    proc = run_midm(["sft", "--recipe", "tiny", "--data", str(sft_data)], check=False)
    assert proc.returncode == 2 and "no sft section" in proc.stderr
    proc = run_midm(["sft", "--recipe", "tiny_sft", "--data", str(tmp_path)], check=False)
    assert proc.returncode == 2 and "midm data sft" in proc.stderr


def test_sft_recipe_adopts_the_base_checkpoint_geometry(sft_data, tmp_path):
    from megatron_ext.sft import sft_recipe
    from recipes import get_recipe, recipe_to_dict

    base = get_recipe("tiny_deep", ["model.vocab_size=2048"])
    (tmp_path / "iter_0000001").mkdir()
    (tmp_path / "iter_0000001" / "recipe.json").write_text(json.dumps(recipe_to_dict(base)))
    (tmp_path / "latest").write_text("iter_0000001")
    recipe, notes = sft_recipe(get_recipe("tiny_sft", [f"sft.dataset={sft_data}", f"checkpoint.load={tmp_path}"]))
    assert recipe.model == base.model and any("base checkpoint" in n for n in notes)
    assert recipe.data.seq_length == 256
    train_samples = json.loads((sft_data / "stats.json").read_text())["splits"]["train"]["samples"]
    assert recipe.train.steps == -(-3 * train_samples // 8)  # 3 epochs at global batch 8
    overrides = [f"sft.dataset={sft_data}", f"checkpoint.load={tmp_path}", "train.steps=3"]
    recipe, notes = sft_recipe(get_recipe("tiny_sft", overrides))  # epochs decide, and the note says so
    assert recipe.train.steps == -(-3 * train_samples // 8)
    assert any("it replaces train.steps=3: sft.epochs decides" in n and "--set sft.epochs=null" in n for n in notes)
    recipe, notes = sft_recipe(get_recipe("tiny_sft", overrides + ["sft.epochs=null"]))
    assert recipe.train.steps == 3 and not any("epochs" in n for n in notes)


def test_converted_sft_model_chats_through_the_template_and_stops_at_eot(sft_baseline, chat_tokenizer_dir,
                                                                          other_chat_tokenizer_dir, tmp_path, capsys):
    """`midm convert to-hf` carries the chat template and <|eot_id|> as a generation eos: transformers
    renders our ids and stops the moment the model emits <|eot_id|> (forced here at the 3rd new token).
    A --tokenizer of the same size but another fingerprint than the checkpoint's is refused."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessor, LogitsProcessorList

    from data_prep.sft.chat import load_chat_tokenizer, render_prompt

    from midm.cli import main as midm_main
    from tokenizer.fingerprint import fingerprint

    out = tmp_path / "hf"
    args = ["convert", "to-hf", "--checkpoint", str(sft_baseline / "checkpoints"), "--output", str(out),
            "--dtype", "fp32", "--tokenizer"]
    # another tokenizer of the same size is refused before any weight is read (the checkpoint records its own)
    assert midm_main(args + [str(other_chat_tokenizer_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--tokenizer {other_chat_tokenizer_dir} is tokenizer" in err, err
    assert "--allow-tokenizer-mismatch" in err and not out.exists()
    run_midm(args + [str(chat_tokenizer_dir)])
    conversion = json.loads((out / "midm_conversion.json").read_text())
    assert conversion["tokenizer_fingerprint"] == fingerprint(out) == fingerprint(chat_tokenizer_dir)
    tok = AutoTokenizer.from_pretrained(str(out))
    model = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    eot = tok.convert_tokens_to_ids("<|eot_id|>")
    assert eot in model.generation_config.eos_token_id
    messages = [{"role": "system", "content": "친절한 비서"}, {"role": "user", "content": "안녕? 오늘 기분 어때?"}]
    ids = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
    assert ids == render_prompt(messages, load_chat_tokenizer(chat_tokenizer_dir))

    class EotAtThird(LogitsProcessor):  # two ordinary tokens, then <|eot_id|>
        def __call__(self, input_ids, scores):
            scores[:, :] = -float("inf")
            scores[:, eot if input_ids.shape[1] == len(ids) + 2 else 500] = 0.0
            return scores

    x = torch.tensor([ids])
    with torch.no_grad():
        gen = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=20, do_sample=False,
                             logits_processor=LogitsProcessorList([EotAtThird()]), pad_token_id=tok.pad_token_id)
    assert gen.shape[1] == len(ids) + 3 and int(gen[0, -1]) == eot
