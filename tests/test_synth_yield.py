"""The yield report: what each check rejected and what was kept, per query style, from a run's files."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from domainfit.artifacts import Pair, Reject, RunDir, write_jsonl
from domainfit.cli import app, main
from domainfit.synth.yields import synth_yield


def make_run(tmp_path) -> RunDir:
    run = RunDir(tmp_path / "run").ensure()
    pairs = [
        Pair(pair_id="p1", chunk_id="a", query="How long is the turbine warranty?"),
        Pair(pair_id="p2", chunk_id="b", query="Turbine warranties last three years.", style="claim"),
        Pair(pair_id="p3", chunk_id="c", query="turbine warranty length", style="keywords"),
    ]
    write_jsonl(run.pairs, pairs)
    # a row from before query styles existed: no "style" key at all
    with run.pairs.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"pair_id": "p0", "chunk_id": "a", "query": "Who approves travel?"}) + "\n")
    rejects = [
        Reject(chunk_id="a", reason="ungrounded", query="What is this?", style="question"),
        Reject(chunk_id="b", reason="ungrounded", query="Warranties exist.", style="claim"),
        Reject(chunk_id="a", reason="not_self_contained", query="What does this study show?", style="question"),
        Reject(chunk_id="c", reason="roundtrip_miss", query="warranty", style="keywords"),
        Reject(chunk_id="d", reason="invalid_output: questions: write at least one question", raw="?"),
        Reject(chunk_id="d", reason="llm_error: timeout after 6 attempt(s)"),
    ]
    write_jsonl(run.rejected, rejects)
    with run.rejected.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"chunk_id": "e", "reason": "copy", "query": "Old reject?"}) + "\n")
    return run


def test_counts_by_outcome_and_style(tmp_path):
    report = synth_yield(make_run(tmp_path))
    assert report.accepted == {"question": 2, "claim": 1, "keywords": 1}
    assert report.counts()["rejected"] == {
        "ungrounded": {"question": 1, "claim": 1},
        "copy": {"question": 1},
        "not_self_contained": {"question": 1},
        "roundtrip_miss": {"keywords": 1},
    }
    assert report.failed_answers == {"invalid_output": 1, "llm_error": 1}
    assert report.generated == 9 and report.chunks == 5
    assert report.styles == ["question", "claim", "keywords"]


def test_the_table_lists_checks_in_the_order_they_run(tmp_path):
    table = synth_yield(make_run(tmp_path)).table()
    assert table.startswith("5 chunks answered, 9 queries checked, 4 accepted; 2 answers held no usable query")
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0] == "| outcome | question | claim | keywords | all | share of queries |"
    assert [row.split(" | ")[0].strip("| ") for row in rows[1:]] == [
        "accepted", "ungrounded", "copy", "not_self_contained", "roundtrip_miss",
    ]  # fmt: skip
    assert rows[1] == "| accepted | 2 | 1 | 1 | 4 | 44.4% |"


def test_the_cli_prints_the_table_or_json(tmp_path):
    run = make_run(tmp_path)
    runner = CliRunner()
    table = runner.invoke(app, ["synth-yield", str(run.root)])
    assert table.exit_code == 0, table.output
    assert "| not_self_contained | 1 | 0 | 0 | 1 | 11.1% |" in table.output
    as_json = runner.invoke(app, ["synth-yield", str(run.root), "--json"])
    assert json.loads(as_json.output)["accepted_by_style"] == {"question": 2, "claim": 1, "keywords": 1}


def test_a_run_without_synth_output_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["synth-yield", str(tmp_path / "empty")])
    assert stop.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "no synth output" in lines[0] and "domainfit synth" in lines[0]
