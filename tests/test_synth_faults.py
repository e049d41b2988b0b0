"""synth against LLM endpoints that misbehave, and disks that fill up: each ends in one line.

Real HTTP throughout: the scripted server of ``domainfit.testing``, and a tiny socket
server here that sends its headers and then drips one byte at a time.
"""

from __future__ import annotations

import errno
import json
import socket
import threading
import time
from pathlib import Path

import pytest

from conftest import cli, llm_config_file, wait_while_running
from domainfit import artifacts
from domainfit.artifacts import Pair, read_jsonl, read_rows
from domainfit.synth import prompts
from domainfit.testing import Answer, Drop, Hang, OpenAIStub, ServerError, good_items, write_sample_docs

FAST = ["--no-progress", "--llm-model", "stub", "--max-concurrency", "2"]


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    from domainfit.testing import SAMPLE_PASSAGES

    return write_sample_docs(tmp_path / "docs", dict(list(SAMPLE_PASSAGES.items())[:3]))


class DripServer:
    """Answers every request with headers at once, then one body byte every ``every_s`` seconds."""

    def __init__(self, every_s: float = 2.0, give_up_s: float = 30.0):
        self.every_s = every_s
        self.give_up_s = give_up_s  # without a deadline on the client, each request is held this long
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.closing = threading.Event()
        self.held: list[float] = []
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/v1"

    def _serve(self) -> None:
        while not self.closing.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        started = time.monotonic()
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
            while not self.closing.wait(self.every_s) and time.monotonic() - started < self.give_up_s:
                conn.sendall(b" ")  # fails once the client has hung up
        except OSError:
            pass
        finally:
            self.held.append(time.monotonic() - started)
            conn.close()

    def close(self) -> None:
        self.closing.set()
        self.listener.close()


def test_timeout_s_is_a_deadline_for_the_whole_request_even_when_bytes_keep_dripping(tmp_path, docs, capsys):
    server = DripServer(every_s=0.5)  # a read never waits long, so httpx's own timeout never fires
    try:
        code = cli(
            "synth", str(docs), "--out", str(tmp_path / "run"), "--llm-base-url", server.base_url, *FAST,
            "--config", str(llm_config_file(tmp_path, timeout_s=2, max_retries=0)),
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while len(server.held) < 3 and time.monotonic() < deadline:  # the drip threads notice the hang-up
            time.sleep(0.1)
    finally:
        server.close()
    err = capsys.readouterr().err
    assert code == 2
    assert "every request failed: timeout x 3" in err
    assert len(server.held) == 3 and max(server.held) < 6, server.held  # 2 s, not the 30 s the server would drip
    rejects = read_jsonl(tmp_path / "run" / "rejected.jsonl")
    assert [row["reason"] for row in rejects] == ["llm_error: timeout after 1 attempt(s)"] * 3


@pytest.mark.parametrize(
    "fault, cause", [(ServerError(503), "HTTP 503"), (Hang(5.0), "timeout"), (Drop(), "connection dropped")], ids=["503", "hang", "drop"]
)
def test_an_endpoint_that_never_answers_fails_the_run_naming_the_cause(tmp_path, docs, capsys, fault, cause):
    with OpenAIStub(default=fault) as stub:
        code = cli(
            "synth", str(docs), "--out", str(tmp_path / "run"), "--llm-base-url", stub.base_url, *FAST,
            "--config", str(llm_config_file(tmp_path, timeout_s=1, max_retries=1, retry_initial_delay_s=0.01)),
        )  # fmt: skip
        requests = len(stub.question_requests())
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and requests == 6  # 3 chunks x (1 try + 1 retry)
    assert len(err) == 1 and f"every request failed: {cause} x 6 (3 chunk(s), none answered" in err[0]
    record = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]["synth"]
    assert record["status"] == "failed" and "every request failed" in record["error"]


def test_some_failed_requests_are_no_error(tmp_path, docs, capsys):
    with OpenAIStub({"ZX-TURBINE": [ServerError(503)] * 5}, completion_renderer=prompts.render_completion) as stub:
        code = cli(
            "synth", str(docs), "--out", str(tmp_path / "run"), "--llm-base-url", stub.base_url, *FAST,
            "--config", str(llm_config_file(tmp_path, max_retries=0)),
        )  # fmt: skip
    assert code in (0, None)
    assert "1 failed and will be retried" in capsys.readouterr().out


SECRET = "sk-test-abcdefghijklmnopqrstuvwxyz-0123"


def test_an_answer_that_echoes_the_api_key_is_redacted_wherever_it_is_written(tmp_path, docs, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    from domainfit.testing import SAMPLE_PASSAGES

    turbine, travel = SAMPLE_PASSAGES["ZX-TURBINE"], SAMPLE_PASSAGES["ZX-TRAVEL"]
    (question, evidence), *_ = good_items(travel, 1)
    script = {
        # rejected: evidence that is not in the chunk, carrying the key
        "ZX-TURBINE": [Answer(((f"Which key is {SECRET} for the turbine?", f"the key {SECRET}"),))],
        # accepted: a good question whose evidence is real, with the key appended to the question
        "ZX-TRAVEL": [Answer(((f"{question[:-1]} with key {SECRET}?", evidence),))],
    }
    with OpenAIStub(script, completion_renderer=prompts.render_completion) as stub:
        assert cli("synth", str(docs), "--out", str(tmp_path / "run"), "--llm-base-url", stub.base_url, *FAST) in (0, None)
    written = {path.name: path.read_text() for path in (tmp_path / "run").iterdir() if path.is_file() and path.suffix != ".parquet"}
    assert not [name for name, text in written.items() if SECRET in text]
    assert "[REDACTED]" in written["rejected.jsonl"] and "[REDACTED]" in written["pairs.jsonl"]
    assert turbine  # the chunk the first answer was about


# --------------------------------------------------------------------------- a full disk


def test_a_full_disk_is_one_line_and_the_rerun_rolls_back_to_the_last_commit(tmp_path, docs, capsys, monkeypatch):
    """ENOSPC at the very first commit (nothing committed), then a rerun with space."""
    real_append = artifacts.append_jsonl

    def full_after_pairs(path, rows):  # rejects and pairs reach the disk, the commit line does not
        if Path(path).name == "synth_done.jsonl":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_append(path, rows)

    with OpenAIStub(completion_renderer=prompts.render_completion) as stub:
        run = tmp_path / "run"
        monkeypatch.setattr("domainfit.synth.store.append_jsonl", full_after_pairs)
        assert cli("synth", str(docs), "--out", str(run), "--llm-base-url", stub.base_url, *FAST) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and "No space left on device" in err[0] and "synth_done.jsonl" in err[0]
        assert len(read_jsonl(run / "pairs.jsonl")) > 0  # uncommitted pairs on disk
        monkeypatch.setattr("domainfit.synth.store.append_jsonl", real_append)

        assert cli("synth", str(docs), "--out", str(run), "--llm-base-url", stub.base_url, *FAST) in (0, None)
        out = capsys.readouterr().out
    pairs = read_rows(run / "pairs.jsonl", Pair)
    assert len(pairs) == 6 and len({pair.pair_id for pair in pairs}) == 6  # 3 chunks x 2, none twice
    assert read_jsonl(run / "rejected.jsonl") == []  # no false duplicates
    assert "chunks done: 3/3" in out


# --------------------------------------------------------------------------- Ctrl-C


@pytest.mark.slow  # a subprocess that loads the base model
@pytest.mark.parametrize("verb", ["synth", "run"])
def test_ctrl_c_exits_130_keeps_the_work_and_prints_the_resume_hint(tmp_path, verb):
    import os
    import signal
    import subprocess
    import sys

    docs = write_sample_docs(tmp_path / "docs")
    run = tmp_path / "run"
    with OpenAIStub(latency_s=0.5, completion_renderer=prompts.render_completion) as stub:
        command = [sys.executable, "-m", "domainfit.cli", verb, str(docs), "--out", str(run),
                   "--llm-base-url", stub.base_url, "--llm-model", "stub"]  # fmt: skip
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a shell's & would ignore SIGINT
        )  # fmt: skip
        committed = lambda: (run / "synth_done.jsonl").exists() and (run / "synth_done.jsonl").read_text().strip()  # noqa: E731
        wait_while_running(process, committed, timeout=300, what="synth never committed a chunk")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted: finished work is saved; run the same command to resume"
    assert read_jsonl(run / "pairs.jsonl")


@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MB tmpfs (needs root; skipped elsewhere), unmounted afterwards."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


@pytest.mark.slow  # two subprocesses that load the base model
def test_a_real_full_disk_is_one_line_and_the_rerun_with_space_finishes_without_false_duplicates(tmp_path, tiny_disk):
    import os
    import subprocess
    import sys

    docs = write_sample_docs(tmp_path / "docs")
    stats = os.statvfs(tiny_disk)
    filler = tiny_disk / "filler"
    filler.write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - 16 * 1024))  # 16 KB left
    run = tiny_disk / "R"
    with OpenAIStub(completion_renderer=prompts.render_completion) as stub:
        command = [sys.executable, "-m", "domainfit.cli", "synth", str(docs), "--out", str(run),
                   "--llm-base-url", stub.base_url, "--llm-model", "stub", "--no-progress"]  # fmt: skip
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        full = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        filler.unlink()
        rerun = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    err = [line for line in full.stderr.splitlines() if line.strip() and not line.startswith(("ERROR", "WARNING"))]
    assert full.returncode == 2 and len(err) == 1 and "No space left on device" in err[0], full.stderr[-2000:]
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    pairs = read_rows(run / "pairs.jsonl", Pair)
    assert len(pairs) == 32 and len({pair.pair_id for pair in pairs}) == 32
    assert read_jsonl(run / "rejected.jsonl") == []
    assert "chunks done: 16/16" in rerun.stdout
