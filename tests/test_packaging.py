"""Every third-party module the code imports is declared in setup.py and pinned in constraints.txt.

CI installs only what setup.py declares: a module present on the machine it was written on but
declared nowhere (``gigatoken`` was; so were ``orjson``, ``awkward``, ``datasets``) makes a fresh
install fall back silently or fail. The data and tokenizer commands must also work from their own
extra: ``pip install .[data]`` is enough for every ``midm data`` command.
"""
from __future__ import annotations

import ast
import functools
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from tests.conftest import REPO

LOCAL = {"midm", "recipes", "megatron_ext", "tokenizer", "data_prep", "evaluation", "slurm", "benchmarks", "tests"}
LOCAL |= {p.stem for p in (REPO / "benchmarks").glob("*.py")}  # benchmark scripts import their siblings
SOURCE_DIRS = ("midm", "recipes", "megatron_ext", "tokenizer", "data_prep", "evaluation", "slurm", "benchmarks",
               "tests")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    tree = ast.parse((REPO / "setup.py").read_text())
    values = {t.id: node.value for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
              if isinstance(t, ast.Name)}
    core = {_norm(re.split(r"[<>=!\[;~ ]", d)[0]) for d in ast.literal_eval(values["CORE"])}
    extras = {k: {_norm(re.split(r"[<>=!\[;~ ]", d)[0]) for d in v}
              for k, v in ast.literal_eval(values["EXTRAS"]).items()}
    return core, extras


def _imports(folders) -> dict[str, set[str]]:
    """{top-level module: files importing it} for absolute imports of non-stdlib, non-local modules."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in LOCAL and top != "__future__":
                        found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


@functools.lru_cache(maxsize=1)
def _module_owners() -> dict[str, list[str]]:
    return packages_distributions()  # reads every installed distribution's file list: once


# Modules of the GPU-only extras (never installed on CPU machines or CI): their distribution, declared in setup.py.
GPU_ONLY = {"transformer_engine": "transformer-engine", "vllm": "lm-eval"}


def _distribution(module: str) -> str:
    if module in GPU_ONLY and module not in _module_owners():
        return GPU_ONLY[module]
    dists = _module_owners().get(module)
    assert dists, f"module {module!r} is imported but not installed here"
    return _norm(dists[0])


def test_every_import_is_declared_and_pinned():
    core, extras = _declared()
    declared = core | set().union(*extras.values())
    pinned = {_norm(line.split("==")[0]) for line in (REPO / "requirements" / "constraints.txt").read_text().splitlines()
              if "==" in line}
    missing = {m: sorted(files)[:3] for m, files in _imports(SOURCE_DIRS).items() if _distribution(m) not in declared}
    assert not missing, f"imported but declared in no setup.py extra: {missing}"
    assert not declared - pinned - {"transformer-engine"}, "declared but not pinned in requirements/constraints.txt"


def test_data_and_tokenizer_commands_run_from_their_extra():
    """data_prep needs CORE + [data] only; tokenizer needs CORE + [tokenizer] (the tokenizer imports
    data_prep's import-light record reader, not its filters)."""
    core, extras = _declared()
    need = {"data_prep": core | extras["data"], "tokenizer": core | extras["tokenizer"]}
    for package, available in need.items():
        imports = _imports([package])
        if package == "data_prep":  # `data tokenize` opens the tokenizer directory through tokenizer/
            imports.update({k: v for k, v in _imports(["tokenizer"]).items() if k in ("tokenizers",)})
        missing = {m: sorted(f)[:2] for m, f in imports.items() if _distribution(m) not in available
                   and not (package == "data_prep" and any("synth" in x for x in f))}
        assert not missing, f"{package} imports {missing} outside its extra"
