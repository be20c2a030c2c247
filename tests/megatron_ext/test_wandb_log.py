"""W&B logging is off by default, needs nothing then, and fails early and clearly when asked for but missing."""
from __future__ import annotations


import pytest

from recipes import RecipeError, get_recipe


def test_off_by_default_and_never_imported():
    from megatron_ext.wandb_log import WandbLogger, check_available

    recipe = get_recipe("tiny")
    assert recipe.logging.wandb_project is None
    check_available(recipe)
    logger = WandbLogger(recipe, run_dir=None, enabled=True)  # no project: nothing is made, nothing imported
    logger.log({"step": 1, "loss": 1.0})
    logger.close()
    assert get_recipe("tiny", ["logging.wandb_project=midm"]).logging.wandb_project == "midm"


def test_a_project_without_the_package_is_a_one_line_error(monkeypatch):
    from megatron_ext.wandb_log import check_available

    # as if not installed
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "wandb" else object())
    with pytest.raises(RecipeError, match=r"needs the wandb package: pip install 'midm-recipes\[wandb\]'"):
        check_available(get_recipe("tiny", ["logging.wandb_project=midm"]))
