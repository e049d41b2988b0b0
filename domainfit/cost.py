"""What a run cost, for the run report: LLM tokens and price, minutes per stage, price per point gained.

Everything is read from what the stages recorded (``manifest.json``'s stage records,
the headline ``metrics.json``) and the configured prices; nothing is measured here.
The price is an estimate from token counts and ``llm.price_per_1k_input/output``
(LLM tokens only: the minutes are the machine's, unpriced). Without prices the
section gives tokens and minutes, no price.

Example::

    lines = cost_section(read_manifest(run), metrics, verdict(manifest), config.llm)
"""

from __future__ import annotations

from typing import Any

from .config import LLMConfig
from .markdown import pipe_table
from .synth.llm import Usage


def _usage(counts: dict[str, Any], prefix: str = "") -> Usage:
    return Usage(
        requests=int(counts.get(f"{prefix}requests") or 0),
        prompt_tokens=int(counts.get(f"{prefix}prompt_tokens") or 0),
        completion_tokens=int(counts.get(f"{prefix}completion_tokens") or 0),
    )


def synth_price(counts: dict[str, Any], llm: LLMConfig) -> float | None:
    """The synth stage's estimated USD: as synth recorded it, else its tokens at the configured prices.

    A batch run's discount is only known to the run that sent it: a batch run that
    recorded no price gets none here (None), rather than one at live prices.
    """
    if counts.get("estimated_cost_usd") is not None:
        return float(counts["estimated_cost_usd"])
    if counts.get("batch_requests"):
        return None
    return _usage(counts).cost_usd(llm)


def price_per_point(price: float, base: float, adapted: float) -> float | None:
    """USD per point (0.01) of the metric gained; None when nothing was gained (gain <= 0)."""
    gain = adapted - base
    if gain <= 0:
        return None
    return price / (100 * gain)


def _money(value: float | None) -> str:
    """Dollars to the cent from $1 up, else to 3 significant digits (LLM prices per run are often fractions of a cent)."""
    if value is None:
        return "–"
    return f"${value:,.2f}" if abs(value) >= 1 else f"${value:.3g}"


def _minutes(seconds: Any) -> str:
    return "–" if seconds is None else f"{float(seconds) / 60:.2f}"


def cost_section(
    manifest: dict[str, Any], metrics: dict[str, Any] | None, verdict: Any, llm: LLMConfig
) -> list[str]:
    """The report's ``## Cost`` section as Markdown lines ([] before any stage ran).

    ``metrics`` is the headline evidence's metrics.json (or None before eval), and
    ``verdict`` the gate's :class:`~domainfit.evaluate.gate.Verdict` (or None).
    """
    stages: dict[str, Any] = manifest.get("stages") or {}
    if not stages:
        return []
    counts = (stages.get("synth") or {}).get("counts") or {}
    total = _usage(counts)
    judge = _usage(counts, "judge_")
    questions = total.minus(judge)
    price = synth_price(counts, llm) if counts else None
    judge_price = judge.cost_usd(llm) if judge.requests else None
    priced = price is not None
    lines = ["## Cost", ""]
    header = ["stage", "minutes", "LLM requests", "tokens in", "tokens out", *(["est. price"] if priced else [])]
    rows: list[list[str]] = []
    for name, record in stages.items():
        row = [name, _minutes(record.get("seconds")), "", "", ""]
        if name == "synth" and counts:
            if judge.requests:
                rows.append(row + ([""] if priced else []))
                row = ["synth: questions", "", *_tokens(questions)]
                rows.append(row + ([_money(None if judge_price is None else price - judge_price)] if priced else []))
                row = ["synth: judge", "", *_tokens(judge)]
                rows.append(row + ([_money(judge_price)] if priced else []))
                continue
            row = [name, row[1], *_tokens(total)]
            rows.append(row + ([_money(price)] if priced else []))
            continue
        rows.append(row + ([""] if priced else []))
    seconds = [float(record["seconds"]) for record in stages.values() if record.get("seconds") is not None]
    rows.append(["**total**", _minutes(sum(seconds)) if seconds else "–", *_tokens(total),
                 *([f"**{_money(price)}**"] if priced else [])])  # fmt: skip
    lines += [pipe_table(header, rows), ""]
    notes = []
    if priced:
        notes.append(
            "Price: estimated by the synth stage from its tokens and the prices configured then"
            if counts.get("estimated_cost_usd") is not None
            else f"Price: estimated from the tokens at ${llm.price_per_1k_input or 0:g} / "
            f"${llm.price_per_1k_output or 0:g} per 1k tokens in / out (llm.price_per_1k_input / output)"
        )
        notes[-1] += "; LLM tokens only: the minutes are this machine's, unpriced."
    elif counts.get("batch_requests") and llm.price_per_1k_input is not None:
        notes.append("No price: this batch run recorded none, and its batch discount is not known afterwards.")
    else:
        notes.append("No price: set `llm.price_per_1k_input` / `llm.price_per_1k_output` to see one.")
    notes.append("Minutes are each stage's last run.")
    earlier = int(counts.get("chunks_done") or 0) - int(counts.get("chunks_done_this_run") or 0)
    if counts and earlier > 0:
        notes.append(
            f"Tokens are the last synth invocation's: {earlier} chunk(s) were finished by earlier ones, "
            "whose tokens are not counted here."
        )
    lines += [" ".join(notes), ""]
    if metrics is not None:
        lines += _per_point(metrics, price, verdict)
    return lines


def _tokens(usage: Usage) -> list[str]:
    return [f"{usage.requests:,}", f"{usage.prompt_tokens:,}", f"{usage.completion_tokens:,}"]


def _per_point(metrics: dict[str, Any], price: float | None, verdict: Any) -> list[str]:
    from .evaluate import render

    metric = render.main_metric(metrics)
    adapted = render.FINETUNED
    if render.BASE not in metrics or adapted not in metrics:
        return []
    title = f"### Price per {metric} point gained, on {render.evidence_name(metrics)}"
    if price is None:
        return [title, "", "No price, so no price per point (see above).", ""]
    rows = []
    for dim in render.dims(metrics):
        base = render.value(metrics, render.BASE, dim, metric)
        tuned = render.value(metrics, adapted, dim, metric)
        if base is None or tuned is None:
            continue
        per_point = price_per_point(price, base, tuned)
        rows.append([dim, f"{base:.4f}", f"{tuned:.4f}", f"{100 * (tuned - base):+.2f}",
                     "no gain" if per_point is None else _money(per_point)])  # fmt: skip
    if not rows:
        return []
    lines = [title, ""]
    if verdict is not None and not verdict.promoted:
        lines += [
            f"**The gate did not promote the adapted model** ({verdict.metric} at dim {verdict.dim}: adapted "
            f"{verdict.adapted:.4f} vs base {verdict.base:.4f}): the base model stays in use, so this spend bought "
            "no gain in use yet.",
            "",
        ]
    header = ["dim", f"base {metric}", f"adapted {metric}", "gain (points)", "price per point"]
    lines += [pipe_table(header, rows), "",
              f"Price per point = price / (100 × (adapted − base)); a point is 0.01 of {metric}.", ""]  # fmt: skip
    return lines
