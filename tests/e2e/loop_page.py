"""A page whose controller is an infinite loop, run through ui.fair as a page runs user code.

Served alone by tests/e2e/test_fair_browser.py (its episodes may run for an hour, so the job holds
its slot until Stop or a closed tab ends it). The dataset is $TTSLAB_DATA/Qwen3-8B/aime24.json.
"""

import dataclasses

import streamlit as st

from engine.evaluate import ControllerSpec, evaluate
from engine.formats.autotts import load_autotts_file
from engine.paths import data_dir
from ui.fair import run_fairly, sandbox_limits

LOOP = ControllerSpec.from_source("class Loop(LLMDesignedMethod):\n    def solve(self, question):\n"
                                  "        while True:\n            pass\n")

st.title("Infinite loop")
dataset = load_autotts_file(data_dir() / "Qwen3-8B" / "aime24.json", "Qwen3-8B/aime24")
result = run_fairly(lambda job: evaluate(dataset, LOOP, shuffles=2, progress=job.report, cancel=job.cancel,
                                         limits=dataclasses.replace(sandbox_limits(job), episode_seconds=3600,
                                                                    evaluation_seconds=3600)),
                    label="an infinite loop")
st.write("returned" if result is not None else "stopped")
