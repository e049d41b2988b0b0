"""The run report gathers the stages' records and says how much the numbers rest on."""

from __future__ import annotations

from domainfit.artifacts import RunDir, update_manifest, write_json
from domainfit.config import RunConfig
from domainfit.report import write_run_report


def run_with_results(tmp_path, test_queries: int) -> RunDir:
    run = RunDir(tmp_path).ensure()
    update_manifest(run, split={"by": "document", "train": 10, "val": 2, "test": test_queries})
    write_json(
        run.eval_dir / "metrics.json",
        {
            "base": {"384": {"ndcg@10": 0.5}, "64": {"ndcg@10": 0.4}},
            "finetuned": {"384": {"ndcg@10": 0.6}, "64": {"ndcg@10": 0.5}},
        },
    )
    return run


def test_few_test_queries_are_called_noise(tmp_path):
    path, table = write_run_report(run_with_results(tmp_path, 4), RunConfig())
    assert "4 held-out queries" in table and "noise" in table
    assert "noise" in path.read_text()
    assert "0.6000" in table


def test_enough_test_queries_carry_no_warning(tmp_path):
    _, table = write_run_report(run_with_results(tmp_path, 300), RunConfig())
    assert "300 held-out queries" in table and "noise" not in table


# --------------------------------------------------------------------------- cost

import pytest  # noqa: E402

from domainfit.artifacts import read_manifest  # noqa: E402
from domainfit.config import load_config  # noqa: E402
from domainfit.evaluate import gate  # noqa: E402
from domainfit.synth.stage import run_synth  # noqa: E402
from domainfit.testing import OpenAIStub, write_sample_docs  # noqa: E402

PRICES = {"llm.price_per_1k_input": 0.00015, "llm.price_per_1k_output": 0.0006}  # gpt-4o-mini's
FAST_SYNTH = {"synth.roundtrip": "off"}  # no BM25 round trip over the chunks


def synth_run(tmp_path, **overrides):
    """A real synth stage against the scripted server (judge on); returns (run, config, stub's requests)."""
    with OpenAIStub() as stub:
        settings = {"llm.base_url": stub.base_url, "llm.model": "stub", "synth.judge": True, **FAST_SYNTH, **overrides}
        config = load_config(overrides=settings, environ={})
        run = RunDir(tmp_path / "run")
        run_synth(write_sample_docs(tmp_path / "docs"), run, config, progress=False)
        return run, config, list(stub.requests)


def evaluated(run: RunDir, base: dict[str, float], adapted: dict[str, float]) -> dict:
    """metrics.json as eval writes it (the two models by dim) and the gate's verdict in the manifest."""
    metrics = {
        "base": {dim: {"ndcg@10": value} for dim, value in base.items()},
        "finetuned": {dim: {"ndcg@10": value} for dim, value in adapted.items()},
        "meta": {"evidence": "synthetic", "queries": 40, "corpus": 12, "main_metric": "ndcg@10"},
    }
    write_json(run.eval_dir / "metrics.json", metrics)
    verdict = gate.judge(metrics, evidence="synthetic")
    update_manifest(run, promotion=verdict.as_dict(), promoted=verdict.promoted)
    return metrics


def tokens(requests, kind: str) -> tuple[int, int, int]:
    """(requests, tokens in, tokens out) the server itself counted for one kind of request."""
    mine = [request for request in requests if request.kind == kind]
    return len(mine), sum(r.prompt_tokens for r in mine), sum(r.completion_tokens for r in mine)


def requests_cell_fits(cell: str, seen: int, counts: dict) -> bool:
    """The report's request count is the client's attempts: every request the server saw, plus any
    attempt that failed on the way (under CI load, a timeout or dropped connection, retried)."""
    failed_on_the_way = sum(counts["failed_attempts"].values())
    return seen <= int(cell.replace(",", "")) <= seen + failed_on_the_way


def dollars(cell: str) -> float:
    """``'$0.00123'`` or ``'**$1.23**'`` -> 0.00123 / 1.23 (the report rounds to 3 significant digits or cents)."""
    return float(cell.strip("*").removeprefix("$").replace(",", ""))


def row(report: str, first_cell: str) -> list[str]:
    line = next(line for line in report.splitlines() if line.startswith(f"| {first_cell} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_with_prices_the_report_gives_the_price_and_the_price_per_point_gained(tmp_path):
    run, config, requests = synth_run(tmp_path, **PRICES)
    metrics = evaluated(run, base={"384": 0.50, "64": 0.40}, adapted={"384": 0.56, "64": 0.38})
    report = write_run_report(run, config)[0].read_text()

    asked, asked_in, asked_out = tokens(requests, "questions")
    judged, judged_in, judged_out = tokens(requests, "judge")
    assert judged > 0
    price_in, price_out = PRICES["llm.price_per_1k_input"] / 1000, PRICES["llm.price_per_1k_output"] / 1000
    price = (asked_in + judged_in) * price_in + (asked_out + judged_out) * price_out
    counts = read_manifest(run)["stages"]["synth"]["counts"]
    assert counts["estimated_cost_usd"] == pytest.approx(price, abs=1e-6)
    questions, judge, total = row(report, "synth: questions"), row(report, "synth: judge"), row(report, "**total**")
    assert questions[3:5] == [f"{asked_in:,}", f"{asked_out:,}"] and judge[3:5] == [f"{judged_in:,}", f"{judged_out:,}"]
    assert requests_cell_fits(questions[2], asked, counts) and requests_cell_fits(judge[2], judged, counts)
    assert dollars(questions[5]) == pytest.approx(asked_in * price_in + asked_out * price_out, rel=5e-3)
    assert dollars(judge[5]) == pytest.approx(judged_in * price_in + judged_out * price_out, rel=5e-3)
    assert dollars(total[5]) == pytest.approx(price, rel=5e-3)

    gain = metrics["finetuned"]["384"]["ndcg@10"] - metrics["base"]["384"]["ndcg@10"]
    assert "Price per ndcg@10 point gained, on synthetic test questions (optimistic)" in report
    gained = row(report, "384")
    assert gained[3] == f"{100 * gain:+.2f}" and dollars(gained[4]) == pytest.approx(price / (100 * gain), rel=5e-3)
    assert row(report, "64")[-1] == "no gain"
    assert "did not promote" not in report


def test_without_prices_the_report_gives_tokens_and_minutes_but_no_price(tmp_path):
    run, config, requests = synth_run(tmp_path)
    evaluated(run, base={"384": 0.50}, adapted={"384": 0.56})
    report = write_run_report(run, config)[0].read_text()

    asked, asked_in, asked_out = tokens(requests, "questions")
    questions = row(report, "synth: questions")
    assert questions[3:] == [f"{asked_in:,}", f"{asked_out:,}"]
    assert requests_cell_fits(questions[2], asked, read_manifest(run)["stages"]["synth"]["counts"])
    seconds = read_manifest(run)["stages"]["synth"]["seconds"]
    assert row(report, "synth")[1] == f"{seconds / 60:.2f}"
    cost = report.split("## Cost", 1)[1].split("\n## ", 1)[0]
    assert "$" not in cost and "No price: set `llm.price_per_1k_input`" in cost


def test_no_gain_is_said_in_words_and_the_gate_s_refusal_is_named(tmp_path):
    run, config, _ = synth_run(tmp_path, **PRICES)
    evaluated(run, base={"384": 0.50, "64": 0.40}, adapted={"384": 0.50, "64": 0.35})
    report = write_run_report(run, config)[0].read_text()

    assert row(report, "384")[-1] == "no gain" and row(report, "64")[-1] == "no gain"
    assert "**The gate did not promote the adapted model** (ndcg@10 at dim 384" in report
    assert "inf" not in report.split("## Cost", 1)[1] and "$-" not in report
