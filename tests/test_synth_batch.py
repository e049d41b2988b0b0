"""``llm.mode = "batch"`` against the scripted server's /v1/files and /v1/batches, over real HTTP.

The batch path must give what the live path gives on the same scripted answers, and
a run killed while it polls must poll the same batch when it runs again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli, llm_config_file, wait_while_running
from domainfit.artifacts import Chunk, RunDir, content_hash, read_json, read_jsonl
from domainfit.config import load_config
from domainfit.errors import ConfigError, LLMError
from domainfit.synth import prompts
from domainfit.synth.batch import STATE_FILE, BatchRun, generate_pairs_in_batches
from domainfit.synth.filters import DuplicateFilter
from domainfit.synth.generate import AnswerChecker, GenerationReport, generate_pairs
from domainfit.synth.llm import Endpoint, LLMClient
from domainfit.synth.store import SynthStore
from domainfit.testing import SAMPLE_PASSAGES, Good, Malformed, OpenAIStub, ServerError, Ungrounded, good_items

ROOT = Path(__file__).resolve().parents[1]
KEYS = ["ZX-TURBINE", "ZX-TRAVEL", "ZX-WARRANTY", "ZX-PASSWORD"]
FAST = {"llm.retry_initial_delay_s": 0.01, "llm.retry_max_delay_s": 0.5, "llm.timeout_s": 5.0,
        "llm.batch_poll_interval_s": 0.01}  # fmt: skip


def make_chunks(keys: list[str]) -> list[Chunk]:
    chunks = []
    for key in keys:
        text = f"{key}\n\n{SAMPLE_PASSAGES[key]}"
        chunks.append(Chunk(chunk_id=content_hash(key, text), doc_id=key.lower(), source=f"{key.lower()}.txt",
                            text=text, char_start=0, char_end=len(text), n_tokens=len(text.split())))  # fmt: skip
    return chunks


def generate(stub: OpenAIStub, chunks: list[Chunk], run_root: Path, mode: str, **overrides):
    """One generate_pairs (live) or generate_pairs_in_batches call: (report, batch run, pairs, rejects)."""
    settings = {"llm.base_url": stub.base_url, "llm.model": "stub", "llm.mode": mode, **FAST, **overrides}
    config = load_config(overrides=settings, environ={})
    run = RunDir(run_root).ensure()
    store = SynthStore(run)
    state = store.recover()
    store.ensure_files()
    duplicates = DuplicateFilter(None, config.synth.near_duplicate_cosine)
    duplicates.add_many(state.queries)
    checker = AnswerChecker(config.synth, lambda text: len(text.split()), duplicates, existing_pair_ids=state.pair_ids)
    report, outcome = GenerationReport(), BatchRun()

    async def go() -> None:
        endpoint = Endpoint.remote(config.llm, stub.base_url, "stub")
        async with LLMClient(endpoint, config.llm, questions_per_chunk=config.synth.questions_per_chunk) as client:
            if mode == "batch":
                await generate_pairs_in_batches(chunks, client, checker, store, config, run, resume=state,
                                                report=report, outcome=outcome)  # fmt: skip
            else:
                await generate_pairs(chunks, client, checker, store, config, resume=state, report=report)

    asyncio.run(go())
    return report, outcome, read_jsonl(run.pairs), read_jsonl(run.rejected)


def stub(script=None, **options) -> OpenAIStub:
    return OpenAIStub(script, completion_renderer=prompts.render_completion, **options)


SCRIPT = {"ZX-TRAVEL": [Ungrounded()], "ZX-WARRANTY": [Malformed(), Good()], "ZX-PASSWORD": [Malformed(), Malformed()]}


@pytest.mark.parametrize("style", ["completion", "tools", "json"])
def test_a_batch_run_writes_the_same_pairs_and_rejects_as_a_live_run(tmp_path, style):
    chunks = make_chunks(KEYS)
    with stub(SCRIPT) as live_stub:
        live, _, live_pairs, live_rejects = generate(live_stub, chunks, tmp_path / "live", "live", **{"llm.prompt_style": style})
    with stub(SCRIPT) as batch_stub:
        batched, outcome, pairs, rejects = generate(batch_stub, chunks, tmp_path / "batch", "batch", **{"llm.prompt_style": style})

    # the same rows; live chunks finish in whatever order their answers arrive, so compare sorted
    rows = lambda found, keys=None: sorted(  # noqa: E731
        json.dumps({key: row[key] for key in keys} if keys else row, sort_keys=True) for row in found
    )
    assert rows(pairs) == rows(live_pairs) and len(pairs) == 4  # turbine 2, warranty 2 after one re-ask
    fields = ("chunk_id", "reason", "raw", "query")
    assert rows(rejects, fields) == rows(live_rejects, fields)
    assert {r["reason"].split(":")[0] for r in rejects} == {"ungrounded", "invalid_output"}
    # every question went in a batch, none live; the re-asks in a second batch, as the live path re-asks
    assert all(r.batch_id is not None for r in batch_stub.question_requests())
    assert outcome.batch_ids == ["batch_1", "batch_2"] and batch_stub.batch_creates() == 2
    assert [r.key for r in batch_stub.question_requests() if r.batch_id == "batch_2"] == ["ZX-WARRANTY", "ZX-PASSWORD"]
    # the first request of each chunk has the very body the live path sent
    first = lambda s: {r.key: r.body for r in s.question_requests() if r.attempt == 0}  # noqa: E731
    assert first(batch_stub) == first(live_stub)
    assert batched.usage.requests == live.usage.requests == 6 and batched.usage.reasks == live.usage.reasks == 2
    assert (batched.usage.prompt_tokens, batched.usage.completion_tokens) == batch_stub.usage_reported()
    assert (batched.chunks_done, batched.pairs, dict(batched.rejects)) == (live.chunks_done, live.pairs, dict(live.rejects))
    record = read_json(tmp_path / "batch" / STATE_FILE)
    assert record["collected"] and record["batch_ids"] == ["batch_1", "batch_2"] and record["status"] == "completed"


def test_failed_lines_are_llm_error_rejects_asked_again_in_a_new_batch_on_the_next_run(tmp_path):
    chunks = make_chunks(KEYS[:3])
    script = {"ZX-TRAVEL": [ServerError(500), Good()], "ZX-WARRANTY": [ServerError(503), Good()]}
    with stub(script) as server:
        report, outcome, pairs, rejects = generate(server, chunks, tmp_path / "run", "batch")
        assert outcome.batch_ids == ["batch_1"]
        assert sorted(r["reason"] for r in rejects) == [
            "llm_error: HTTP 500 in batch batch_1", "llm_error: HTTP 503 in batch batch_1"
        ]
        assert len(pairs) == 2 and report.chunks_done == 1 and report.chunks_failed == 2
        done = read_jsonl(tmp_path / "run" / "synth_done.jsonl")
        assert sorted(row["done"] for row in done) == [False, False, True]

        again, outcome, pairs, rejects = generate(server, chunks, tmp_path / "run", "batch")
        assert outcome.batch_ids == ["batch_2"]
        assert sorted(r.key for r in server.question_requests() if r.batch_id == "batch_2") == ["ZX-TRAVEL", "ZX-WARRANTY"]
        assert len(pairs) == 6 and again.already_done == 1 and again.chunks_done == 2
        for chunk in chunks:
            assert [row["query"] for row in pairs if row["chunk_id"] == chunk.chunk_id] == [q for q, _ in good_items(chunk.text, 2)]


def test_more_chunks_than_a_batch_holds_go_in_further_batches_one_after_another(tmp_path):
    with stub() as server:
        report, outcome, pairs, _ = generate(server, make_chunks(KEYS), tmp_path / "run", "batch",
                                             **{"llm.batch_max_requests": 3})  # fmt: skip
    assert outcome.batch_ids == ["batch_1", "batch_2"] and len(pairs) == 8 and report.chunks_done == 4
    sizes = [server.batches[batch_id]["request_counts"]["total"] for batch_id in outcome.batch_ids]
    assert sizes == [3, 1]


def test_a_batch_whose_every_line_failed_is_an_error_like_a_dead_endpoint(tmp_path):
    with stub(default=ServerError(500)) as server, pytest.raises(LLMError, match=r"every request failed: HTTP 500 x 2"):
        generate(server, make_chunks(KEYS[:2]), tmp_path / "run", "batch")


def test_an_expired_batch_keeps_what_it_answered_and_says_how_to_go_on(tmp_path):
    chunks = make_chunks(KEYS)
    with stub(batch_status=["expired"]) as server:
        with pytest.raises(LLMError) as raised:
            generate(server, chunks, tmp_path / "run", "batch")
        message = str(raised.value)
        assert "\n" not in message
        assert "batch batch_1 at" in message and "ended expired: 2 of 4 request(s) answered and kept" in message
        assert "run the same command again" in message and 'llm.mode = "live"' in message
        assert len(read_jsonl(tmp_path / "run" / "pairs.jsonl")) == 4 and read_jsonl(tmp_path / "run" / "rejected.jsonl") == []

        report, outcome, pairs, _ = generate(server, chunks, tmp_path / "run", "batch")
        assert outcome.batch_ids == ["batch_2"] and report.already_done == 2 and report.chunks_done == 2
        assert len(pairs) == 8 and server.batch_creates() == 2


def test_a_provider_that_fails_the_batch_is_one_line(tmp_path):
    with stub(batch_status=["failed"]) as server, pytest.raises(LLMError) as raised:
        generate(server, make_chunks(KEYS[:2]), tmp_path / "run", "batch")
    assert "ended failed (scripted batch failure): 0 of 2 request(s) answered" in str(raised.value)


KILLED_DRIVER = """
import asyncio, sys
sys.path.insert(0, {tests!r})
from test_synth_batch import generate, make_chunks, KEYS
from domainfit.testing import OpenAIStub

class Remote:  # the stub runs in the test process; this process only needs its URL
    base_url = {url!r}

generate(Remote, make_chunks(KEYS), {run!r}, "batch")
"""


def test_a_run_killed_while_polling_resumes_by_polling_the_same_batch(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with stub(batch_polls=10**9) as server:  # the batch stays in progress until the test says otherwise
        driver = KILLED_DRIVER.format(tests=str(ROOT / "tests"), url=server.base_url, run=str(run))
        process = subprocess.Popen([sys.executable, "-c", driver], cwd=ROOT, env=env, stderr=subprocess.PIPE)
        recorded = lambda: (run / STATE_FILE).exists() and read_json(run / STATE_FILE).get("status") == "in_progress"  # noqa: E731
        wait_while_running(process, recorded, timeout=120, what="the batch was never recorded")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        process.stderr.close()
        assert read_json(run / STATE_FILE)["batch_id"] == "batch_1" and server.question_requests() == []

        server.batch_polls = server._batch_polls_seen["batch_1"] + 2  # two more polls, then it is done
        report, outcome, pairs, rejects = generate(server, make_chunks(KEYS), run, "batch")

        assert server.batch_creates() == 1 and len(server.files) == 2  # the input, the output: nothing sent twice
        assert outcome.resumed == "batch_1" and outcome.batch_ids == [] and outcome.polls >= 2
        assert len(pairs) == 8 and rejects == [] and report.chunks_done == 4
        assert {r.batch_id for r in server.question_requests()} == {"batch_1"}
        assert read_json(run / STATE_FILE)["collected"] is True


def test_a_run_killed_between_creating_the_batch_and_recording_it_finds_the_batch(tmp_path):
    chunks = make_chunks(KEYS[:2])
    with stub() as server:
        generate(server, chunks, tmp_path / "first", "batch")
        # as if the first run had died right after POST /batches: its record names the upload only
        record = read_json(tmp_path / "first" / STATE_FILE)
        run = RunDir(tmp_path / "run").ensure()
        record.update(batch_id=None, status="uploaded", collected=False, batch_ids=[])
        (run.root / STATE_FILE).write_text(json.dumps(record))
        server.batches["batch_1"]["status"] = "completed"
        _, outcome, pairs, _ = generate(server, chunks, run.root, "batch")
    assert server.batch_creates() == 1 and outcome.resumed == record["input_file_id"] and len(pairs) == 4


def test_a_recorded_batch_the_provider_does_not_know_is_one_line_saying_what_to_delete(tmp_path):
    chunks = make_chunks(KEYS[:1])
    with stub() as server:
        generate(server, chunks, tmp_path / "run", "batch")
        record = read_json(tmp_path / "run" / STATE_FILE)
        record.update(batch_id="batch_99", collected=False)
        (tmp_path / "run" / STATE_FILE).write_text(json.dumps(record))
        with pytest.raises(LLMError) as raised:
            generate(server, chunks, tmp_path / "run", "batch")
    assert "GET /batches/batch_99 at" in str(raised.value) and f"delete {tmp_path / 'run' / STATE_FILE}" in str(raised.value)
    assert server.batch_creates() == 1


# --------------------------------------------------------------------------- the CLI: cost, bad settings


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    from domainfit.testing import write_sample_docs

    return write_sample_docs(tmp_path / "docs", {key: SAMPLE_PASSAGES[key] for key in KEYS[:3]})


def test_cli_synth_in_batch_mode_reports_the_batch_price(tmp_path, docs, capsys):
    with stub() as server:
        code = cli(
            "synth", str(docs), "--out", str(tmp_path / "run"), "--llm-base-url", server.base_url, "--llm-model", "stub",
            "--no-progress", "--llm-mode", "batch", "--config", str(llm_config_file(tmp_path, batch_poll_interval_s=0.01,
            price_per_1k_input=1.0, price_per_1k_output=2.0, batch_price_factor=0.5)),
        )  # fmt: skip
        prompt_tokens, completion_tokens = server.usage_reported()
    out = capsys.readouterr().out
    assert code == 0, out
    live_price = prompt_tokens / 1000 * 1.0 + completion_tokens / 1000 * 2.0
    synth = read_json(tmp_path / "run" / "manifest.json")["stages"]["synth"]
    assert synth["counts"]["estimated_cost_usd"] == pytest.approx(live_price * 0.5, abs=1e-6)
    assert synth["counts"]["pairs_accepted"] == 6 and synth["counts"]["batch_requests"] == 3
    assert synth["details"]["batch"] == {"batch_ids": ["batch_1"], "resumed": None, "price_factor": 0.5}
    assert f"est. ${live_price * 0.5:.4f} at the batch price (0.5 x live)" in out
    assert "in batch batch_1 (3 polls)" in out


def test_batch_mode_at_an_endpoint_without_a_batch_api_is_one_line_naming_it(tmp_path, docs, capsys):
    with stub(batch_api=False) as server:
        code = cli(
            "synth", str(docs), "--out", str(tmp_path / "run"), "--llm-base-url", server.base_url, "--llm-model", "stub",
            "--no-progress", "--config", str(llm_config_file(tmp_path, mode="batch")),
        )  # fmt: skip
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1, err
    assert f"the LLM endpoint {server.base_url} has no Batch API (POST /files answered HTTP 404)" in err[0]
    assert 'set llm.mode = "live"' in err[0]


def test_batch_mode_needs_an_endpoint_and_no_token_budget(tmp_path):
    with pytest.raises(ConfigError, match=r"llm.mode.*batch needs llm.base_url"):
        load_config(overrides={"llm.mode": "batch"}, environ={})
    with stub() as server, pytest.raises(ConfigError, match="synth.token_budget cannot bound a batch"):
        generate(server, make_chunks(KEYS[:1]), tmp_path / "run", "batch", **{"synth.token_budget": 1000})
    assert server.files == {}
