# Two commands do all set-up on a fresh machine (Python >= 3.10 with venv):
#   make run    installs into .venv, then runs the embedded default job
#   make test   installs into .venv, then runs the test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.zoo-installed

.PHONY: run test install clean

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,train]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/zoo-train

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup -q

clean:
	rm -rf $(VENV) build dist *.egg-info
