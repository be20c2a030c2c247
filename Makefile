# make test · make demo — both create .venv (Python 3.12) on a fresh machine and reuse it after.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS ?= all

# Python 3.12 is required (Megatron-Core 0.19). Try a working python3.12, then pyenv's.
PYTHON312 := $(shell for c in python3.12 "$$(PYENV_VERSION=3.12 pyenv which python3.12 2>/dev/null)" \
	$$(ls -d $$HOME/.pyenv/versions/3.12.*/bin/python3.12 2>/dev/null | sort -V | tail -n1); do \
	[ -n "$$c" ] && "$$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && { echo "$$c"; break; }; done)

.PHONY: venv test test-fast demo lock clean

$(STAMP): setup.py requirements/constraints.txt
	@if [ -z "$(PYTHON312)" ]; then echo "error: Python 3.12 is required (megatron-core 0.19 needs >=3.12)." \
		"Install it (e.g. 'pyenv install 3.12') or put python3.12 on PATH." >&2; exit 1; fi
	@[ -x $(PY) ] || $(PYTHON312) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements/constraints.txt -e ".[$(EXTRAS)]"
	@touch $(STAMP)

venv: $(STAMP)

# Two pytest-xdist workers (CI has 2 cores; measured 1.5x on tests/megatron_ext/test_train.py);
# TEST_WORKERS=0 runs in one process. Grouping and order: tests/conftest.py.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest -q --durations=15 -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder tests

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

demo: $(STAMP)
	$(VENV)/bin/midm demo

# Re-pin every dependency from the current .venv (run after changing setup.py).
lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e ' > requirements/constraints.txt

clean:
	rm -rf $(VENV) demo_out .pytest_cache
