"""Artifacts: atomic writes, durable appends, readers that never read half a file."""

from __future__ import annotations

import json

import pytest

from domainfit.artifacts import (
    Chunk,
    Pair,
    RunDir,
    StageRecord,
    append_jsonl,
    read_chunks,
    read_json,
    read_manifest,
    read_parquet,
    read_rows,
    repair_jsonl_tail,
    stage_run,
    write_chunks,
    write_jsonl,
    write_parquet,
)
from domainfit.errors import ArtifactError


def pair(n: int) -> Pair:
    return Pair(pair_id=f"p{n}", chunk_id="c1", query=f"What is item {n}?")


def test_jsonl_round_trip(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", [pair(1), pair(2)])
    assert [p.pair_id for p in read_rows(path, Pair)] == ["p1", "p2"]


def test_atomic_write_leaves_no_temp_files_and_replaces_whole(tmp_path):
    path = tmp_path / "pairs.jsonl"
    write_jsonl(path, [pair(1), pair(2)])
    write_jsonl(path, [pair(3)])
    assert [p.pair_id for p in read_rows(path, Pair)] == ["p3"]
    assert [f.name for f in tmp_path.iterdir()] == ["pairs.jsonl"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", [pair(1)])

    def rows():
        yield pair(2)
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_jsonl(path, rows())
    assert [p.pair_id for p in read_rows(path, Pair)] == ["p1"]
    assert [f.name for f in tmp_path.iterdir()] == ["pairs.jsonl"]


def test_truncated_jsonl_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(pair(1).model_dump()) + "\n" + '{"pair_id": "p2", "chu', encoding="utf-8")
    with pytest.raises(ArtifactError, match="pairs.jsonl is truncated at line 2"):
        read_rows(path, Pair)


def test_corrupt_line_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"pair_id": "p1", "chunk_id": "c", "query": "q?"}\nnot json\n', encoding="utf-8")
    with pytest.raises(ArtifactError, match="line 2"):
        read_rows(path, Pair)


def test_row_missing_a_field_names_it(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"pair_id": "p1", "query": "q?"}\n', encoding="utf-8")
    with pytest.raises(ArtifactError, match="chunk_id"):
        read_rows(path, Pair)


def test_append_then_repair_torn_tail(tmp_path):
    path = tmp_path / "pairs.jsonl"
    append_jsonl(path, [pair(1)])
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"pair_id": "p2", "chunk')  # a kill mid-append
    assert repair_jsonl_tail(path) > 0
    append_jsonl(path, [pair(3)])
    assert [p.pair_id for p in read_rows(path, Pair)] == ["p1", "p3"]


def test_parquet_round_trip_and_corruption(tmp_path):
    chunks = [Chunk(chunk_id="c1", doc_id="d", source="a.md", text="t", char_start=0, char_end=1, n_tokens=1)]
    path = write_chunks(tmp_path / "chunks.parquet", chunks)
    assert read_chunks(path) == chunks
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ArtifactError, match="chunks.parquet is corrupt or truncated"):
        read_chunks(path)


def test_parquet_missing_column_is_named(tmp_path):
    path = write_parquet(tmp_path / "triplets.parquet", [{"anchor": "a"}])
    with pytest.raises(ArtifactError, match="positive"):
        read_parquet(path, ["anchor", "positive"])


def test_missing_artifact_is_named(tmp_path):
    with pytest.raises(ArtifactError, match="missing artifact"):
        read_rows(tmp_path / "nope.jsonl", Pair)


def test_stage_run_records_timing_counts_and_failure(tmp_path):
    run = RunDir(tmp_path).ensure()
    with stage_run(run, "synth", config_hash="abc") as record:
        record.counts["pairs"] = 3
    done = read_manifest(run)["stages"]["synth"]
    assert done["status"] == "done" and done["counts"] == {"pairs": 3} and done["seconds"] >= 0
    with pytest.raises(ValueError):
        with stage_run(run, "train"):
            raise ValueError("boom")
    failed = StageRecord.model_validate(read_manifest(run)["stages"]["train"])
    assert failed.status == "failed" and "boom" in failed.error
    assert "torch" in read_json(run.manifest)["versions"]
