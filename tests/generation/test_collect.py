"""Collection against a real local HTTP server whose content is scripted (tests/generation/scripted_model.py):
interval splitting, probe timing, token accounting, store writes, export, resume after a real SIGKILL."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import scripted_model as sm
from servers import scripted_server

from engine.formats.autotts import load_autotts_file
from engine.generation import records
from engine.generation.backend import PROBE_TOKENS, BackendError
from engine.generation.collect import collect, read_questions
from engine.generation.openai_backend import OpenAIBackend
from engine.generation.records import CollectionConflict
from engine.paths import PROJECT_ROOT
from engine.store import Store


def _stored(store: Store, name: str) -> list[list[tuple[list[str], int, str]]]:
    ds = store.load_dataset(name)
    return [[(list(b.probes), b.tokens, b.final) for b in q.branches] for q in ds.questions]


def test_branches_are_probed_at_every_interval(store: Store, backend: OpenAIBackend) -> None:
    """Every branch holds one probe per Δ boundary below its end ("No" before the scripted answer appears),
    then a closing probe at its end (the cap for a cut branch), and its token count as the server reported it;
    the last probe is the final answer, as in every public AutoTTS file."""
    cfg = sm.settings()
    report = collect(store, "s/probes", backend, questions=sm.QUESTIONS, settings=cfg)
    expected = sm.expected_dataset(cfg, len(sm.QUESTIONS))
    assert _stored(store, "s/probes") == expected
    flat = [b for q in expected for b in q]
    assert any(b[1] == sm.MAX_TOKENS for b in flat), "the seeds must give at least one branch cut at the cap"
    assert {sm.variant_of(cfg.growth.sampling.request_seed(q, b, 0)) for q in range(2) for b in range(4)} == {
        "v0", "v1", "v2"}, "the seeds must give every variant (v1 boxes another answer than its probes)"
    assert any(p == "No" for b in flat for p in b[0])
    assert all(probes[-1] == final for probes, _, final in flat)
    assert report.complete and report.branches_written == report.branches_total == 8
    assert report.timing.tokens == sum(b[1] for b in flat)


def test_the_last_probe_is_the_final_answer(store: Store, backend: OpenAIBackend) -> None:
    """A branch's final answer is its closing probe, not the box it wrote: variant v1 boxes 41 but its probes
    answer 42 from half-way on, so its final is 42; a branch of L tokens holds L // Δ + 1 probes when L is off
    a boundary and L // Δ on one (the probe of the last boundary is already at its end)."""
    cfg = sm.settings(branches=4)
    collect(store, "s/final", backend, questions=sm.QUESTIONS, settings=cfg)
    seeds = [[cfg.growth.sampling.request_seed(q, b, 0) for b in range(4)] for q in range(2)]
    for q, branches in enumerate(_stored(store, "s/final")):
        for b, (probes, tokens, final) in enumerate(branches):
            name = sm.variant_of(seeds[q][b])
            assert final == probes[-1] == sm.VARIANTS[name].final
            assert len(probes) == tokens // sm.INTERVAL + (tokens % sm.INTERVAL != 0)


def _failing_closing_probe(endpoint: str, body: dict) -> str:
    """The scripted model, except that a probe after the branch's own box is cut before closing (ERR)."""
    if body["prompt"].endswith("\\boxed{") and "\\boxed{4" in body["prompt"].split(sm.ASSISTANT, 1)[1]:
        return "1 + 2 + "
    return sm.reply(endpoint, body)


def test_a_failed_closing_probe_falls_back_to_the_branch_box(store: Store) -> None:
    """When the closing probe gives no answer ("ERR" here) but the branch boxed one, that box is the final
    answer, still stored as the last probe; a branch cut at the cap has no box and keeps the probe's answer."""
    cfg = sm.settings(branches=4)
    with scripted_server(_failing_closing_probe) as srv:
        b = OpenAIBackend("scripted", srv.base_url, concurrency=2)
        try:
            collect(store, "s/fallback", b, questions=sm.QUESTIONS[:1], settings=cfg)
        finally:
            b.close()
    seeds = [cfg.growth.sampling.request_seed(0, i, 0) for i in range(4)]
    for seed, (probes, _, final) in zip(seeds, _stored(store, "s/fallback")[0], strict=True):
        v = sm.VARIANTS[sm.variant_of(seed)]
        assert final == probes[-1] == (v.box if v.length <= sm.MAX_TOKENS else v.final)


def test_requests_follow_the_procedure(store: Store, server, backend: OpenAIBackend) -> None:
    """Intervals are sampled with the chosen parameters and at most Δ tokens; probes are greedy, capped
    at 32 tokens, and their prompt is the branch's prefix plus a suffix ending in \\boxed{."""
    server.requests.clear()
    collect(store, "s/requests", backend, questions=sm.QUESTIONS[:1], settings=sm.settings(branches=2))
    bodies = [body for endpoint, body in server.requests if endpoint == "completions"]
    probes = [b for b in bodies if b["prompt"].endswith("\\boxed{")]
    samples = [b for b in bodies if not b["prompt"].endswith("\\boxed{")]
    assert probes and samples
    assert all(b["temperature"] == 0 and b["max_tokens"] == PROBE_TOKENS for b in probes)
    assert all(b["max_tokens"] <= sm.INTERVAL and b["temperature"] == 0.7 and b["top_p"] == 0.95
               and b["top_k"] == 20 for b in samples)
    # A probe's prefix is the branch so far: the next interval continues from exactly that text,
    # unless the probe is the final one of a branch cut at the cap.
    prefixes = {b["prompt"] for b in samples}
    suffix = sm.FMT.probe_suffix("")
    for p in probes:
        text = p["prompt"][: -len(suffix)]
        assert text in prefixes or len(text.split(sm.ASSISTANT)[1].split()) == sm.MAX_TOKENS


def test_collection_becomes_a_dataset_and_exports(store: Store, backend: OpenAIBackend, tmp_path: Path) -> None:
    """A finished collection is a normal dataset (facts, interval) and exports to AutoTTS JSON that loads back."""
    collect(store, "s/export", backend, questions=sm.QUESTIONS, settings=sm.settings(branches=3))
    run = records.get_run(store, "s/export")
    assert (run.status, run.branches_done, run.branches_total) == ("complete", 6, 6)
    assert run.generated_tokens > 0 and run.generate_seconds > 0 and run.probe_seconds > 0
    info = {i.name: i for i in store.list_datasets()}["s/export"]
    assert (info.n_questions, info.n_branches_total, info.probe_freq) == (2, 6, sm.INTERVAL)
    out = tmp_path / "export.json"
    store.export_dataset("s/export", out, "autotts")
    loaded = load_autotts_file(out, name="s/export")
    assert loaded.content_hash == store.load_dataset("s/export").content_hash
    assert [q.gold for q in loaded.questions] == ["42", "13"]


def test_progress_counts_branches(store: Store, backend: OpenAIBackend) -> None:
    """Progress goes up to questions x branches and reports tokens/s and an ETA."""
    calls = []
    collect(store, "s/progress", backend, questions=sm.QUESTIONS, settings=sm.settings(branches=2),
            progress=lambda *a: calls.append(a))
    done = [c[0] for c in calls]
    assert done == sorted(done) and done[-1] == calls[-1][1] == 4
    assert "tokens/s" in calls[-1][2] and "ETA" in calls[-1][2]


def test_conflicts_are_refused(store: Store, backend: OpenAIBackend) -> None:
    """Starting a collection under a used name, resuming an unknown one, or resuming with another model fails
    with a message; nothing is written."""
    collect(store, "s/once", backend, questions=sm.QUESTIONS[:1], settings=sm.settings(branches=1))
    with pytest.raises(CollectionConflict, match="exists already"):
        collect(store, "s/once", backend, questions=sm.QUESTIONS[:1], settings=sm.settings(branches=1))
    with pytest.raises(CollectionConflict, match="no collection named"):
        collect(store, "s/never", backend, resume=True)
    other = OpenAIBackend("scripted", backend.api_base, check=False)
    other.model = "another"
    with pytest.raises(CollectionConflict, match="same model"):
        collect(store, "s/once", other, resume=True)


def test_read_questions(tmp_path: Path, store: Store, backend: OpenAIBackend) -> None:
    """Questions come from JSONL, CSV or a stored dataset; a bad row is named in a one-line error."""
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text('{"question": "A?", "answer": 1}\n\n{"question": "B?", "gold_answer": "x"}\n')
    assert read_questions(str(jsonl)) == [("A?", "1"), ("B?", "x")]
    csv_file = tmp_path / "q.csv"
    csv_file.write_text("question,answer\n\"C, really?\",\\frac{1}{2}\n")
    assert read_questions(str(csv_file)) == [("C, really?", "\\frac{1}{2}")]
    collect(store, "s/source", backend, questions=sm.QUESTIONS[:1], settings=sm.settings(branches=1))
    assert read_questions("s/source", store) == sm.QUESTIONS[:1]
    (tmp_path / "bad.jsonl").write_text('{"question": "A?"}\n')
    with pytest.raises(ValueError, match="row 1: field 'answer'"):
        read_questions(str(tmp_path / "bad.jsonl"))
    (tmp_path / "broken.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match="line 1: not JSON"):
        read_questions(str(tmp_path / "broken.jsonl"))
    with pytest.raises(FileNotFoundError, match="no stored dataset"):
        read_questions("missing/name", store)


def test_unreachable_server_and_unknown_model(server) -> None:
    """An unreachable server and a model the server does not list are one-line BackendErrors."""
    with pytest.raises(BackendError, match=re.escape("cannot reach the OpenAI-compatible server at http://127.0.0.1:9/v1")):
        OpenAIBackend("scripted", "http://127.0.0.1:9/v1")
    with pytest.raises(BackendError, match=r"model 'nope' is not served by .* \(it serves: scripted\)"):
        OpenAIBackend("nope", server.base_url)


def test_api_key_never_recorded(server, monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
    """The API key and credentials in the server URL stay out of what is stored."""
    monkeypatch.setenv("TTSLAB_API_KEY", "sk-secret-123")
    host = server.base_url.replace("http://", "http://user:pw@") + "?token=abc"
    backend = OpenAIBackend("scripted", host, check=False)
    assert "secret" not in json.dumps(backend.describe()) and "pw" not in backend.describe()["api_base"]
    assert "token" not in backend.describe()["api_base"]


def _cli(db: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "engine", "--db", str(db), *args]


def _slow(endpoint: str, body: dict) -> str:
    time.sleep(0.05)
    return sm.reply(endpoint, body)


def test_resume_after_sigkill(tmp_path: Path) -> None:
    """A collecting `python -m engine generate` killed with SIGKILL keeps every finished branch; `--resume`
    finishes the rest, and the result equals an uninterrupted collection branch for branch."""
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in sm.QUESTIONS))
    db = tmp_path / "kill.duckdb"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    cfg = sm.settings(branches=6, parallel=2)
    with scripted_server(_slow) as srv:
        args = ["generate", "--model", "scripted", "--api-base", srv.base_url, "--dataset", "s/kill",
                "--branches", "6", "--interval", str(sm.INTERVAL), "--max-tokens", str(sm.MAX_TOKENS),
                "--format", "chatml", "--parallel", "2"]
        proc = subprocess.Popen(_cli(db, *args, "--questions", str(questions)), env=env, cwd=PROJECT_ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            done = _wait_for_branches(db, "s/kill", proc)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            proc.kill()
        partial = records.get_run(Store(db), "s/kill")
        assert done >= 1 and partial.status == "collecting" and partial.branches_done < 12
        resumed = subprocess.run(_cli(db, *args, "--resume"), env=env, cwd=PROJECT_ROOT, capture_output=True,
                                 text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    store = Store(db)
    assert records.get_run(store, "s/kill").status == "complete"
    assert _stored(store, "s/kill") == sm.expected_dataset(cfg, 2)


def _wait_for_branches(db: Path, name: str, proc: subprocess.Popen, timeout: float = 120) -> int:
    """Poll the store until the collecting process has written a branch."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.stderr.read()
        if db.exists():
            run = records.get_run(Store(db), name)
            if run is not None and run.branches_done:
                return run.branches_done
        time.sleep(0.3)
    raise AssertionError("no branch was written in time")
