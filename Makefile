# dsl_explore developer tasks (GNU make).
#
#   make test        install (if needed), lint, run the test suite (quick sizes)
#   make lab         start JupyterLab on 127.0.0.1 with a token (a browser for PNG export
#                    is ensured first, as for make test; DSL_EXPLORE_QUICK=1 make lab: small sizes)
#   make help        list the targets
#
# Every variable below can be overridden: `make test PYTEST_ARGS="-k loss"`,
# `make lab PORT=9999`, `make VENV=/tmp/venv test`.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PORT ?= 8888
TOKEN ?=
PYTEST_ARGS ?=
# Constraints file of tested versions; `make LOCK= test` installs unpinned.
LOCK ?= constraints.txt
# uv installs the packages (about 3x faster than pip on a fresh venv): UV=auto takes the uv on
# PATH, else installs uv into the venv with pip first (a few seconds); `make UV= install` forces
# pip, which is also the fallback when uv fails.
UV ?= auto
# Two workers (CI has 2 cores); whole files go to one worker so module-scoped
# fixtures (a JupyterLab server, a browser) start once.
XDIST_ARGS ?= -n 2 --dist loadfile
# Rounds of the browser stress job (tests/browser/test_stress.py: Run Alls of 04 and of the
# explorer under CPU load, `make stress`); 20 by default, fewer in CI (.ci/run), and never
# inside `make test`, which stays under 15 minutes on 2 cores.
STRESS_N ?= 20

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install test lint lab lock clean gpu-check stress

help: ## show this help
	@echo "dsl_explore make targets:"
	@grep -E '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) \
	  | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'
	@echo "variables: PYTHON=$(PYTHON) VENV=$(VENV) PORT=$(PORT) TOKEN=<generated if empty>"
	@echo "           PYTEST_ARGS='$(PYTEST_ARGS)' XDIST_ARGS='$(XDIST_ARGS)'"

# The install stamp: rebuilt only when pyproject.toml changes (or the venv is gone).
# torch: keep one that already imports; otherwise try the local wheel directory
# that pip is configured with (find-links, CPU build) without touching an index.
# Where there is none that attempt fails quickly and `pip install -e .[test]`
# then picks whatever torch pip chooses for the machine. The rest goes through uv
# when present (it does not read pip's find-links, hence torch first with pip).
$(STAMP): pyproject.toml $(LOCK)
	@echo "==> installing dsl_explore[test] into $(VENV)"
	@test -x "$(BIN)/python" || $(PYTHON) -m venv "$(VENV)"
	@if "$(BIN)/python" -c 'import torch' >/dev/null 2>&1; then \
	  echo "==> torch already installed: $$("$(BIN)/python" -c 'import torch; print(torch.__version__)')"; \
	else \
	  echo "==> torch: trying a local wheel (pip find-links) first"; \
	  "$(BIN)/python" -m pip install --no-index --no-deps torch \
	    || echo "==> no local torch wheel; pip will choose torch for this machine"; \
	fi
	@uv="$(UV)"; \
	if [ "$$uv" = auto ]; then \
	  uv="$$(command -v uv || true)"; \
	  if [ -z "$$uv" ] && "$(BIN)/python" -m pip install -q uv >/dev/null 2>&1; then \
	    uv="$(BIN)/uv"; \
	  fi; \
	fi; \
	if [ -n "$$uv" ]; then \
	  echo "==> installing with uv ($$uv)"; \
	  "$$uv" pip install --python "$(BIN)/python" -e ".[test]" $(if $(LOCK),-c "$(LOCK)") \
	    || { echo "==> uv failed; installing with pip"; \
	         "$(BIN)/python" -m pip install -e ".[test]" $(if $(LOCK),-c "$(LOCK)"); }; \
	else \
	  "$(BIN)/python" -m pip install -e ".[test]" $(if $(LOCK),-c "$(LOCK)"); \
	fi
	@touch "$@"

install: $(STAMP) ## create the venv and install dsl_explore[test] (editable)

test: $(STAMP) ## lint, import contracts, types, pytest (-n 2, DSL_EXPLORE_QUICK=1; no stress)
	scripts/ensure-browser
	$(MAKE) --no-print-directory lint
	export PATH="$(abspath $(BIN)):$$PATH" DSL_EXPLORE_QUICK=1 MPLBACKEND=Agg \
	  PYVISTA_OFF_SCREEN=true; \
	"$(BIN)/python" -m pytest $(XDIST_ARGS) -m "not stress" $(PYTEST_ARGS)

stress: $(STAMP) ## browser stress job: STRESS_N Run Alls of 04 and the explorer under CPU load
	scripts/ensure-browser
	export PATH="$(abspath $(BIN)):$$PATH" DSL_EXPLORE_QUICK=1 MPLBACKEND=Agg \
	  PYVISTA_OFF_SCREEN=true DSL_EXPLORE_STRESS_N="$(STRESS_N)"; \
	"$(BIN)/python" -m pytest -m stress -s tests/browser/test_stress.py $(PYTEST_ARGS)

lint: $(STAMP) ## ruff, the import-linter contracts (layers, private names) and mypy
	"$(BIN)/ruff" check .
	"$(BIN)/lint-imports" --no-cache
	"$(BIN)/mypy"

gpu-check: $(STAMP) ## CUDA tests, kernel bench, training steps/s, reproduce --quick -> docs/perf/*.json
	export PATH="$(abspath $(BIN)):$$PATH" MPLBACKEND=Agg; "$(BIN)/python" scripts/gpu-check

lab: $(STAMP) ## JupyterLab on http://127.0.0.1:$(PORT) with a token (never 0.0.0.0)
	scripts/ensure-browser
	PORT="$(PORT)" TOKEN="$(TOKEN)" VENV="$(VENV)" scripts/lab

lock: $(STAMP) ## rewrite constraints.txt from the venv (after a dependency change)
	@{ sed -n '/^#/p' constraints.txt; \
	   "$(BIN)/python" -m pip freeze --exclude-editable \
	     | grep -v -i -E '^(torch|triton|nvidia-|dsl-explore)([=<> ]|$$)'; } > constraints.txt.tmp
	@mv constraints.txt.tmp constraints.txt
	@echo "==> constraints.txt: $$(grep -vc '^#' constraints.txt) pinned packages"

clean: ## remove the venv and caches
	rm -rf "$(VENV)" .pytest_cache .ruff_cache .hypothesis build dist *.egg-info
	find . -path ./.git -prune -o -type d \( -name __pycache__ -o -name .ipynb_checkpoints \) \
	  -prune -exec rm -rf {} +
