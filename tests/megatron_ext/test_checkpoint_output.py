"""The ``--output`` of the checkpoint-writing commands (``megatron_ext/checkpoint_output.py``): a root
holding a checkpoint is refused in one line (offering ``--overwrite`` only where the command has it),
and ``--overwrite`` replaces it whole once the new checkpoint is complete — or not at all.

The commands' early refusals, on real checkpoints, are tested beside each command: ``test_prune.py``,
``test_depth_upscale.py``, ``test_hf_convert.py``."""
from __future__ import annotations

import pytest

from megatron_ext.checkpoint_output import OutputExistsError, check, staged
from tests.megatron_ext.surgery_fixtures import tree_bytes as _files


def _run_root(path):
    """A checkpoint root as a training run leaves it: two iter dirs, ``latest`` at the newer."""
    for step in (30, 60):
        (path / f"iter_00000{step}").mkdir(parents=True)
        (path / f"iter_00000{step}" / "weights").write_bytes(bytes([step]) * 8)
    (path / "latest").write_text("iter_0000060")
    return path


def test_a_checkpoint_root_is_refused_naming_it_and_how_to_replace_it(tmp_path):
    run = _run_root(tmp_path / "run")
    with pytest.raises(OutputExistsError) as err:
        check(run, overwrite=False)
    assert str(err.value) == (f"--output {run} already holds a checkpoint (latest → iter_0000060); choose a new "
                              "directory, or pass --overwrite to replace it (the new checkpoint replaces the whole "
                              "directory once it is complete)")
    with pytest.raises(OutputExistsError, match=r"\(latest → iter_0000060\); choose a new --output directory$"):
        check(run, overwrite=None)  # dus, prune: no --overwrite to offer
    (run / "latest").unlink()  # iter_* without a pointer (a first save that died) is a checkpoint too
    with pytest.raises(OutputExistsError, match=r"\(iter_0000060\)"):
        check(run, overwrite=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputExistsError, match="is a file"):
        check(tmp_path / "file", overwrite=True)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README").write_text("x")
    for fine in (tmp_path / "absent", tmp_path / "notes", run):
        check(fine, overwrite=True if fine == run else False)


def test_overwrite_replaces_the_whole_root_only_once_complete(tmp_path):
    run = _run_root(tmp_path / "run")
    before = _files(run)
    with pytest.raises(RuntimeError, match="disk full"):
        with staged(run, overwrite=True) as root:
            assert root != run
            (root / "iter_0000000").mkdir(parents=True)
            (root / "latest").write_text("iter_0000000")
            raise RuntimeError("disk full")
    assert _files(run) == before and sorted(p.name for p in tmp_path.iterdir()) == ["run"]

    with staged(run, overwrite=True) as root:
        (root / "iter_0000000").mkdir(parents=True)
        (root / "iter_0000000" / "weights").write_bytes(b"new")
        (root / "latest").write_text("iter_0000000")
        assert _files(run) == before  # nothing visible until the block completes
    assert _files(run) == {"iter_0000000/weights": b"new", "latest": b"iter_0000000"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging or old copy left

    with pytest.raises(OutputExistsError, match="--overwrite"):  # the save-time check
        with staged(run, overwrite=False):
            pytest.fail("entered the block")
    fresh = tmp_path / "fresh"
    with staged(fresh, overwrite=False) as root:
        assert root == fresh  # nothing to replace: checkpoint.save's own atomic iter_* write


def test_an_output_inside_a_checkpoint_is_refused_even_with_overwrite(tmp_path):
    run = _run_root(tmp_path / "run")
    for step in (30, 60):
        (run / f"iter_00000{step}" / ".metadata").write_bytes(b"x")  # what a saved iteration holds
    for inside, where in ((run / "iter_0000060", run / "iter_0000060"),        # an iteration itself
                          (run / "iter_0000060" / "sub", run / "iter_0000060"),
                          (run / "pruned", run)):                              # beside latest, in the root
        for overwrite in (False, True, None):
            with pytest.raises(OutputExistsError, match=f"^--output {inside} is inside the checkpoint {where}: "):
                check(inside, overwrite=overwrite)
    (run / "latest").unlink()  # a root without its pointer still holds saved iterations
    with pytest.raises(OutputExistsError, match="is inside the checkpoint"):
        check(run / "pruned", overwrite=True)
    check(tmp_path / "elsewhere" / "out", overwrite=False)  # beside the run, not inside it
