"""Filter configuration: the packaged YAML, deep-merged with the user's ``--config FILE``."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from data_prep.errors import DataError

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "filter.yaml"
ALL_STAGES = ["url", "normalize", "langid", "heuristics", "dedup", "toxicity", "pii", "quality"]
_PATH_KEYS = {("url", "blocklist_files"), ("toxicity", "lexicon_files"), ("toxicity", "spam_lexicon_files"),
              ("toxicity", "classifier"), ("quality", "classifier")}


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _resolve_paths(cfg: dict, root: Path) -> dict:
    for section, key in _PATH_KEYS:
        value = cfg.get(section, {}).get(key)
        if isinstance(value, str) and value:
            cfg[section][key] = str((root / value).resolve())
        elif isinstance(value, list):
            cfg[section][key] = [str((root / v).resolve()) for v in value]
    return cfg


def load_config(user_file: str | None = None, stages: list[str] | None = None) -> dict[str, Any]:
    cfg = _resolve_paths(yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8")), DEFAULT_CONFIG.parent)
    if user_file:
        path = Path(user_file)
        if not path.is_file():
            raise DataError(f"config file {user_file} does not exist")
        user = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(user, dict):
            raise DataError(f"{user_file} must hold a YAML mapping of stage -> settings")
        cfg = deep_merge(cfg, _resolve_paths(user, path.resolve().parent))
    if stages is not None:
        cfg["stages"] = stages
    unknown = [s for s in cfg["stages"] if s not in ALL_STAGES]
    if unknown:
        raise DataError(f"unknown stage(s) {unknown}; choose from {','.join(ALL_STAGES)}")
    cfg["stages"] = [s for s in ALL_STAGES if s in cfg["stages"]]  # always run in canonical order
    return cfg
