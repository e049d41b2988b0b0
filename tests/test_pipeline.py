"""`domainfit run`: every stage end to end, resumable after a kill, re-running only what changed.

The LLM is the scripted OpenAI-protocol server from domainfit/testing.py, reached over
real HTTP; everything else (LanceDB, MiniLM, the trainer) is real.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from domainfit.artifacts import Pair, RunDir, read_manifest, read_rows
from domainfit.config import load_config
from domainfit.pipeline import run_pipeline

from conftest import ROOT
from domainfit.testing import OpenAIStub

pytestmark = pytest.mark.slow

SAMPLE = ROOT / "data" / "sample"
SECRET = "sk-test-secret-value-9999"
FAST_SETTINGS = """
[synth]
max_chunks = 24

[train]
epochs = {epochs}
max_seq_length = 64
batch_size = 16

[mining]
num_negatives = 2
"""


def small_docs(tmp_path: Path) -> Path:
    """A few of the sample documents (md and txt), enough for a split by document."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in sorted(os.listdir(SAMPLE)):
        if name.endswith((".md", ".txt")):
            shutil.copy(SAMPLE / name, docs / name)
    return docs


def config_file(tmp_path: Path, stub: OpenAIStub, epochs: int = 1) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(
        f'[llm]\nbase_url = "{stub.base_url}"\nmodel = "stub"\nmax_concurrency = 4\n'
        + FAST_SETTINGS.format(epochs=epochs),
        encoding="utf-8",
    )
    return path


def assert_no_duplicate_pairs(run: RunDir) -> list[Pair]:
    pairs = read_rows(run.pairs, Pair)
    ids = [pair.pair_id for pair in pairs]
    assert len(ids) == len(set(ids)), "a pair was written twice"
    return pairs


def assert_complete(run: RunDir) -> None:
    for path in (run.chunks, run.pairs, run.triplets, run.manifest, run.report, run.eval_dir / "metrics.json"):
        assert path.exists(), path
    assert (run.model_dir / "modules.json").exists()
    assert (run.index_dir).is_dir()
    for name in ("train", "val", "test"):
        assert run.split_file(name).exists()
    metrics = json.loads((run.eval_dir / "metrics.json").read_text())
    assert {"base", "finetuned", "bm25"} <= set(metrics)


def test_run_end_to_end_then_a_train_change_reruns_train_and_eval_only(tmp_path):
    docs = small_docs(tmp_path)
    run = RunDir(tmp_path / "run")
    with OpenAIStub() as stub:
        config = load_config(config_file(tmp_path, stub), environ={"OPENAI_API_KEY": SECRET})
        first = run_pipeline(docs, run, config, log=lambda _: None)
        assert first.ran() == ["synth", "split", "mine", "baseline", "train", "eval"]
        assert_complete(run)
        assert_no_duplicate_pairs(run)
        report = run.report.read_text()
        assert "Retrieval on synthetic questions from the same generator (optimistic)" in report
        assert "finetuned" in report and "finetuned+bm25" in report and "--queries FILE" in report
        # the gate: a verdict as the report's first line, in the manifest, and as the CLI's last line
        promoted = read_manifest(run)["promoted"]
        assert report.startswith("**Promoted" if promoted else "**Not promoted")
        assert first.summary().splitlines()[-1].startswith("use: the adapted" if promoted else "use: the base")

        again = run_pipeline(docs, run, config, log=lambda _: None)
        assert again.ran() == []

        config.train.learning_rate = 3e-5  # any value but the default (1e-4)
        changed = run_pipeline(docs, run, config, log=lambda _: None)
        assert changed.ran() == ["train", "eval"]

        forced = run_pipeline(docs, run, config, from_stage="eval", log=lambda _: None)
        assert forced.ran() == ["eval"]
        manifest = read_manifest(run)
        assert manifest["stages"]["train"]["status"] == "done"
        for path in (run.manifest, run.report, run.eval_dir / "report.md"):
            assert SECRET not in path.read_text(), f"the API key leaked into {path.name}"

        config.rerank.enabled = True  # the optional stage: off by default, then run, skipped, reported
        for key, value in {"base_model": "minilm", "max_steps": 2, "max_length": 64, "top_k": 5, "validation": False}.items():
            setattr(config.rerank, key, value)
        assert run_pipeline(docs, run, config, log=lambda _: None).ran() == ["rerank"]
        assert run_pipeline(docs, run, config, log=lambda _: None).ran() == []
        assert "Re-ranking: the bi-encoder's top k" in run.report.read_text()


def _start_run(docs: Path, run: RunDir, config: Path, log: Path) -> subprocess.Popen:
    with log.open("ab") as handle:  # a file, not a pipe: progress bars must never block the child
        return subprocess.Popen(
            [sys.executable, "-m", "domainfit.cli", "run", str(docs), "--out", str(run.root), "--config", str(config)],
            stdout=handle,
            stderr=handle,
            start_new_session=True,
        )


def _kill_when(process: subprocess.Popen, condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if condition():
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.1)
    raise AssertionError("condition never held")


def test_killed_during_synth_and_during_train_resumes_to_complete_artifacts(tmp_path):
    docs = small_docs(tmp_path)
    run = RunDir(tmp_path / "run")
    with OpenAIStub(latency_s=0.3) as stub:
        config = config_file(tmp_path, stub, epochs=2)
        log = tmp_path / "run.log"
        first = _start_run(docs, run, config, log)
        killed_in_synth = _kill_when(
            first, lambda: run.pairs.exists() and len(run.pairs.read_bytes().splitlines()) >= 4, timeout=300
        )
        assert killed_in_synth, log.read_text()[-2000:]

        second = _start_run(docs, run, config, log)
        killed_in_train = _kill_when(second, lambda: any(run.checkpoints_dir.glob("checkpoint-*")), timeout=600)

        third = _start_run(docs, run, config, log)
        assert third.wait(timeout=900) == 0, log.read_text()[-2000:]
        if not killed_in_train:
            pytest.fail("training finished before a checkpoint could be killed")

        assert_complete(run)
        pairs = assert_no_duplicate_pairs(run)
        assert pairs
        done = [json.loads(line) for line in run.synth_state.read_text().splitlines() if line.strip()]
        done_keys = [row.get("chunk_id") for row in done]
        assert len(done_keys) == len(set(done_keys)), "a chunk was marked done twice"
