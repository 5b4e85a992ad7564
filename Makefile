# tumornb: the two commands are `make book` and `make test`.
# Both create the project-local environment (.venv) first when it is missing or stale.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PROFILE ?= default
RUN_DIR ?= runs/$(PROFILE)
# pytest-xdist workers for `make test`; tests/conftest.py keeps work that shares a fixture on one.
TEST_WORKERS ?= 2

.PHONY: help venv browser book run ablation test test-fast lint format clean

help:
	@echo "make book   set up $(VENV), run every chapter on the phantom data (profile $(PROFILE)), build _build/html"
	@echo "make ablation  after make book: train chapter 04's ablation (variants x seeds), re-run 04-05, rebuild"
	@echo "make test   set up $(VENV), lint, install Chromium where possible, run the whole test suite ($(TEST_WORKERS) workers)"
	@echo "make lint   ruff check and format check"

# The stamp is newer than pyproject.toml once the install has finished; an interrupted
# install leaves no stamp, so the next make installs again.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

run: venv
	$(BIN)/tumornb run --profile $(PROFILE) --run-dir $(RUN_DIR)

book: run
	$(BIN)/tumornb book --run-dir $(RUN_DIR) --out .
	@echo "open _build/html/index.html"

ablation: venv
	$(BIN)/tumornb ablate --profile $(PROFILE) --run-dir $(RUN_DIR)
	$(BIN)/tumornb run --profile $(PROFILE) --run-dir $(RUN_DIR) --only 04,05
	$(BIN)/tumornb book --run-dir $(RUN_DIR) --out .

# The offline-chart test needs a real browser. Install Chromium where this user can (root with
# apt-get); elsewhere that one test skips and says why.
browser:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null; then \
		true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Chromium for the browser test (apt-get)"; \
		(timeout 300 apt-get update -qq && timeout 300 apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
			|| echo "could not install Chromium: the browser test will be skipped"; \
	else \
		echo "no Chromium, and apt-get needs root: the browser test will be skipped"; \
	fi

test: lint browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

test-fast: venv
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not slow" tests

lint: venv
	$(BIN)/ruff check tumornb tests notebooks benchmarks
	$(BIN)/ruff format --check tumornb tests

format: venv
	$(BIN)/ruff format tumornb tests
	$(BIN)/ruff check --fix tumornb tests

clean:
	rm -rf _build runs/smoke runs/default .pytest_cache
