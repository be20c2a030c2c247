"""Shared pytest setup: repository paths and markers."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than ~20 s (still part of make test)")


# The suite runs on two pytest-xdist workers (`make test`: -n 2 --dist loadfile --no-loadscope-reorder).
# loadfile keeps each module on one worker, so its expensive module-scoped fixtures (trained tiny models,
# converted checkpoints) are built once, not once per worker. (`--dist loadgroup` would be the tool to
# also keep tests/slurm/ together, but with pytest 9.2 xdist 3.8's group suffix no longer reaches the
# node id — checked here: every group was split — so the two tests/slurm files may each start their own
# one-node cluster; they use free ports and their own directories.) The longest module (the reduced
# demo) is sent first, then the modules with the most `slow` tests, so the two workers end close together.
FIRST = ("tests/midm/test_demo.py",)


def pytest_collection_modifyitems(config, items):
    slow: dict[str, int] = {}
    for item in items:
        module = item.nodeid.split("::")[0]
        slow[module] = slow.get(module, 0) + (item.get_closest_marker("slow") is not None)
    order = {m: i for i, m in enumerate(dict.fromkeys(i.nodeid.split("::")[0] for i in items))}

    def rank(item):
        module = item.nodeid.split("::")[0]
        first = FIRST.index(module) if module in FIRST else len(FIRST)
        return first, -slow[module], order[module]

    items.sort(key=rank)  # stable: tests keep their order inside a module


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on a 2-core box: extra intra-op threads only spin (measured ~9x slower)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def chat_tokenizer_dir(tmp_path_factory) -> Path:
    """A 2,048-id tokenizer trained on the committed sample and exported with the chat template (~5 s)."""
    from tokenizer.config import TrainConfig
    from tokenizer.export import export
    from tokenizer.train import train

    root = tmp_path_factory.mktemp("chat_tok")
    sample = TEST_DATA / "tokenizer"
    train([str(sample / "ko_train.jsonl.gz"), str(sample / "en_train.txt")], root / "sp", TrainConfig(vocab_size=2048))
    export(root / "sp", root / "hf")
    return root / "hf"


@pytest.fixture(scope="session")
def other_chat_tokenizer_dir(chat_tokenizer_dir, tmp_path_factory) -> Path:
    """Another tokenizer of the same 2,048 ids: :func:`chat_tokenizer_dir` with two learned pieces
    trading ids (scores kept, so the same merges; tokenizer.json regenerated from the model). Same
    layout and padded size, other ids for those pieces — what two runs of `midm tokenizer train` on
    different corpora give, without a second training (~0.1 s)."""
    import json
    import shutil

    from tokenizer.hf import NORMAL, load_proto, write_hf_files

    out = tmp_path_factory.mktemp("other_tok") / "hf"
    shutil.copytree(chat_tokenizer_dir, out)
    proto = load_proto(out / "tokenizer.model")
    i, j = [k for k, p in enumerate(proto.pieces) if p.type == NORMAL and len(p.piece) > 1][:2]
    a, b = type(proto.pieces[i])(), type(proto.pieces[j])()
    a.CopyFrom(proto.pieces[i])
    b.CopyFrom(proto.pieces[j])
    proto.pieces[i].CopyFrom(b)
    proto.pieces[j].CopyFrom(a)
    (out / "tokenizer.model").write_bytes(proto.SerializeToString())
    meta = json.loads((out / "midm_tokenizer.json").read_text(encoding="utf-8"))
    write_hf_files(proto, out, meta, chat_template=True)
    return out
