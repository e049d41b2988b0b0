"""Resuming synth: a SIGKILLed run, re-run, asks no finished chunk again and duplicates nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import wait_while_running
from domainfit.artifacts import Pair, Reject, RunDir, read_chunks, read_jsonl
from domainfit.synth import prompts
from domainfit.synth.store import ChunkOutcome, SynthStore
from domainfit.testing import SAMPLE_PASSAGES, OpenAIStub, good_items, write_sample_docs

ROOT = Path(__file__).resolve().parents[1]


def complete_rows(path: Path) -> list[dict]:
    """The whole lines of a log a killed process may have torn."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines(keepends=True) if line.endswith("\n")]


def synth_command(docs: Path, run: Path, base_url: str) -> list[str]:
    return [
        sys.executable, "-m", "domainfit.cli", "synth", str(docs), "--out", str(run),
        "--llm-base-url", base_url, "--llm-model", "stub", "--max-concurrency", "2", "--no-progress",
    ]  # fmt: skip


@pytest.mark.slow  # two subprocesses that load the base model: ~30-80 s
def test_sigkill_halfway_then_rerun_finishes_every_chunk_exactly_once(tmp_path):
    docs = write_sample_docs(tmp_path / "docs")
    run = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with OpenAIStub(latency_s=0.4, completion_renderer=prompts.render_completion) as stub:
        process = subprocess.Popen(
            synth_command(docs, run, stub.base_url), cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        def finished() -> set[str]:
            return {row["chunk_id"] for row in complete_rows(run / "synth_done.jsonl") if row["done"]}

        # wait for done markers, not pairs: a chunk's pairs are written before its marker,
        # so on a loaded machine pairs can exist while no chunk is marked done yet
        wait_while_running(process, lambda: len(finished()) >= 2, timeout=300, what="synth never finished a chunk")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        process.stderr.close()

        finished_before = finished()
        requested_before = len(stub.question_requests())
        assert 0 < len(finished_before) < len(SAMPLE_PASSAGES)

        rerun = subprocess.run(synth_command(docs, run, stub.base_url), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr

        chunks = read_chunks(run / "chunks.parquet")
        assert len(chunks) == len(SAMPLE_PASSAGES)
        key_of = {chunk.chunk_id: stub.key(chunk.text) for chunk in chunks}
        pairs = read_jsonl(run / "pairs.jsonl")
        assert len({row["pair_id"] for row in pairs}) == len(pairs)
        for chunk in chunks:
            expected = [question for question, _ in good_items(chunk.text, 2)]
            assert [row["query"] for row in pairs if row["chunk_id"] == chunk.chunk_id] == expected, key_of[chunk.chunk_id]
        assert read_jsonl(run / "rejected.jsonl") == []
        for chunk_id in finished_before:
            assert stub.count(key_of[chunk_id]) == 1, f"finished chunk {key_of[chunk_id]} was asked again"
        assert all(stub.count(key) <= 2 for key in key_of.values())
        assert len(stub.question_requests()) < requested_before + len(SAMPLE_PASSAGES)
        assert f"chunks done: {len(SAMPLE_PASSAGES)}/{len(SAMPLE_PASSAGES)} ({len(finished_before)} already done" in rerun.stdout


def _pair(chunk_id: str, n: int) -> Pair:
    return Pair(pair_id=f"{chunk_id}-{n}", chunk_id=chunk_id, query=f"Question {n} about {chunk_id}?")


def test_recover_cuts_rows_that_were_flushed_but_never_committed(tmp_path):
    run = RunDir(tmp_path).ensure()
    store = SynthStore(run)
    store.commit([ChunkOutcome("a", "key-a", True, [_pair("a", 1), _pair("a", 2)], [Reject(chunk_id="a", reason="copy", query="Q?")])])
    committed_pairs = run.pairs.read_bytes()
    committed_rejects = run.rejected.read_bytes()
    # a kill after chunk b's rows were appended but before its commit line, mid-way through a line
    with run.pairs.open("a") as handle:
        handle.write(_pair("b", 1).model_dump_json() + "\n" + '{"pair_id": "b-2", "chu')
    with run.rejected.open("a") as handle:
        handle.write(Reject(chunk_id="b", reason="ungrounded").model_dump_json() + "\n")

    state = store.recover()
    assert run.pairs.read_bytes() == committed_pairs and run.rejected.read_bytes() == committed_rejects
    assert state.done_keys == {"key-a"} and state.pair_ids == {"a-1", "a-2"} and state.dropped_bytes > 0

    # a torn commit line un-commits its batch too
    store.commit([ChunkOutcome("b", "key-b", True, [_pair("b", 1)], [])])
    with run.synth_state.open("rb+") as handle:
        handle.truncate(run.synth_state.stat().st_size - 5)
    state = store.recover()
    assert state.done_keys == {"key-a"} and run.pairs.read_bytes() == committed_pairs


def test_failed_chunks_are_committed_but_not_done(tmp_path):
    run = RunDir(tmp_path).ensure()
    store = SynthStore(run)
    store.commit([ChunkOutcome("a", "key-a", False, [], [Reject(chunk_id="a", reason="llm_error: timeout")])])
    state = store.recover()
    assert state.done_keys == set()
    assert [row["reason"] for row in read_jsonl(run.rejected)] == ["llm_error: timeout"]
