# tealign: the two set-up commands of the README.
#   make demo   installs .venv (if needed) and runs `tealign demo` (bundled mini datasets)
#   make test   installs .venv (if needed) and runs the whole test suite
# Both bootstrap the same virtual environment at .venv (torch 2.13.0 CPU first).

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= tealign-demo

.PHONY: demo test lint bootstrap clean-venv

$(BIN)/tealign: pyproject.toml
	bash scripts/bootstrap.sh $(VENV) $(PY)
	@touch $@

bootstrap: $(BIN)/tealign

demo: $(BIN)/tealign
	TEALIGN_DATA_DIR=$${TEALIGN_DATA_DIR:-$(abspath ../shared/data)} $(BIN)/tealign demo -o $(DEMO_DIR)

test: $(BIN)/tealign
	bash scripts/install_chromium.sh
	$(BIN)/ruff check src tests benchmarks docs experiments datasets
	TEALIGN_DATA_DIR=$${TEALIGN_DATA_DIR:-$(abspath ../shared/data)} $(BIN)/python -m pytest -q -ra tests

clean-venv:
	rm -rf $(VENV)
