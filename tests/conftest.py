"""Shared fixtures: the packaged MiniLM, and small real run directories.

``tiny_run`` is a run directory as ``synth`` leaves it (chunks.parquet + pairs.jsonl)
built from a slice of the public financial QA set in ../shared/benchmarks, so the
mining, training and evaluation tests run on real text without an LLM.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from domainfit.artifacts import Chunk, Pair, RunDir, content_hash, pair_id_for, write_chunks, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
SHARED_BENCHMARKS = ROOT.parent / "shared" / "benchmarks"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")


def cli(*args: str) -> int:
    """Run the console script in-process, as a user would from a shell; returns its exit code."""
    from domainfit.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code


def wait_while_running(process: subprocess.Popen, condition, *, timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail with the process's stderr if it ends first, or ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            err = process.stderr.read() if process.stderr else ""
            raise AssertionError(err.decode() if isinstance(err, bytes) else err)
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def llm_config_file(tmp_path: Path, **llm: object) -> Path:
    """A run.toml with these ``[llm]`` settings (values as TOML-compatible JSON)."""
    path = tmp_path / "run.toml"
    path.write_text("[llm]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in llm.items()))
    return path


def financial_rows(limit: int, stride: int = 50, offset: int = 0) -> list[dict]:
    """``limit`` rows with a non-empty context, every ``stride``-th, so many companies appear."""
    path = SHARED_BENCHMARKS / "financial-qa-10k" / "pairs.jsonl"
    if not path.exists():
        pytest.skip(f"benchmark data not found at {path}")
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row["context"].strip():
                rows.append(row)
    return rows[offset::stride][:limit]


def run_from_rows(root: Path, rows: list[dict]) -> RunDir:
    """A run directory as synth would leave it: one chunk per distinct context, one pair per row."""
    run = RunDir(root).ensure()
    chunks: dict[str, Chunk] = {}
    pairs: list[Pair] = []
    for row in rows:
        doc_id = f"{row['ticker']}_{row['filing']}"
        text = row["context"].strip()
        chunk_id = content_hash(doc_id, text)
        if chunk_id not in chunks:
            start = sum(len(c.text) + 1 for c in chunks.values() if c.doc_id == doc_id)
            chunks[chunk_id] = Chunk(
                chunk_id=chunk_id,
                doc_id=doc_id,
                source=f"{doc_id}.txt",
                text=text,
                char_start=start,
                char_end=start + len(text),
                n_tokens=len(text.split()),
            )
        pairs.append(
            Pair(
                pair_id=pair_id_for(chunk_id, row["question"]),
                chunk_id=chunk_id,
                query=row["question"],
                evidence=text[:80],
                generator={"model": "financial-qa-10k", "prompt_version": "dataset"},
            )
        )
    write_chunks(run.chunks, list(chunks.values()))
    unique = {pair.pair_id: pair for pair in pairs}
    write_jsonl(run.pairs, unique.values())
    return run


@pytest.fixture(autouse=True)
def _user_vector_cache(tmp_path_factory, monkeypatch):
    """`eval --beir` keeps vectors in a user cache folder: a test's is its own, never ~/.cache."""
    monkeypatch.setenv("DOMAINFIT_CACHE_DIR", str(tmp_path_factory.mktemp("vector-cache")))


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    from domainfit.models import resolve

    return Path(resolve("minilm"))


@pytest.fixture
def tiny_run(tmp_path: Path) -> RunDir:
    """~120 real financial pairs over several companies (documents)."""
    return run_from_rows(tmp_path / "run", financial_rows(120))
