# Two commands do all set-up on a fresh machine (Python >= 3.10 with venv):
#   make run    installs into .venv, then runs the embedded default job
#   make test   installs into .venv (with mmdet/mmseg support), then runs the test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.zoo-installed
MM_STAMP := $(VENV)/.zoo-mm-installed

.PHONY: run test lint install mm clean

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,train]"
	touch $(STAMP)

install: $(STAMP)

# mmcv is built from source once into ~/.cache/zoo/wheels ($$ZOO_WHEEL_CACHE) and reused.
$(MM_STAMP): $(STAMP)
	$(PY) -m zoo.mm.install
	touch $(MM_STAMP)

mm: $(MM_STAMP)

run: $(STAMP)
	$(VENV)/bin/zoo-train

# TRITON_INTERPRET=1: the CPU suite runs the Triton kernels through Triton's interpreter. The test
# command sets it (never a conftest): Triton reads it when a kernel is decorated, and on a GPU
# machine the kernel tests must run compiled (.ci/gpu-check calls pytest without it).
test: $(STAMP) $(MM_STAMP)
	TRITON_INTERPRET=1 $(PY) -m pytest -n 2 --dist loadgroup -q

# The rules are pyproject's [tool.ruff]; .pre-commit-config.yaml runs the same on each commit.
lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build dist *.egg-info

# timm's own tests/test_models.py on each family's smallest variant (tests/timm_suite/run.py fetches the test
# file of the installed timm from PyPI once; ~30 min on 2 loaded cores, so not part of `make test`).
timm-tests: $(STAMP)
	$(PY) tests/timm_suite/run.py -q -rfE
