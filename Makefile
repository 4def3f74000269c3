# Every target sets up .venv first (idempotent: a stamp file records what was installed).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.torchexec-setup
PKGS := core plugins/aten $(wildcard plugins/proxy) $(wildcard plugins/torchbind) $(wildcard plugins/onnxruntime) $(wildcard plugins/inductor)
PKG_FILES := $(foreach p,$(PKGS),$(p)/pyproject.toml) requirements-dev.txt $(wildcard plugins/torchbind/csrc/*) $(wildcard plugins/torchbind/csrc/*/*) $(wildcard plugins/torchbind/setup.py)

.PHONY: setup demo test lint docs bench fuzz clean

setup: $(STAMP)

$(STAMP): $(PKG_FILES)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation $(foreach p,$(PKGS),-e ./$(p))
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/torchexec demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy core/src plugins/*/src tests benchmarks fuzzing

docs: setup
	$(VENV)/bin/sphinx-build -q -W --keep-going -b html docs docs/_build/html

test: lint docs
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

bench: setup
	$(PY) benchmarks/run.py

# The long fuzzing run (CI runs 2,000 mutants per loader inside `make test`). Override FUZZ_ARGS,
# e.g. `make fuzz FUZZ_ARGS="--programs 200000 --atheris 600"` (atheris: `pip install atheris`).
FUZZ_ARGS ?= --programs 50000 --hypothesis 1000
fuzz: setup
	$(PY) benchmarks/fuzz_long.py $(FUZZ_ARGS)

clean:
	rm -rf $(VENV) docs/_build
