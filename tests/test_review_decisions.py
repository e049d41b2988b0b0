"""Review decisions and what the page shows, without a server: pure functions over rows."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from domainfit.artifacts import Chunk, Pair, Reject, ReviewDecision, RunDir, pair_id_for, write_jsonl
from domainfit.review import record_decision, reviewed_pairs
from domainfit.review.decisions import apply_review, latest_decisions, read_decisions
from domainfit.review.decisions import edited_query, rescued_pairs
from domainfit.review.items import build_items, check_badges, highlight, item_status, present, review_counts
from domainfit.review.security import host_name, is_loopback


def _pair(n: int, chunk_id: str = "c1") -> Pair:
    query = f"What is rule number {n} of the policy?"
    return Pair(pair_id=pair_id_for(chunk_id, query), chunk_id=chunk_id, query=query, evidence=f"rule {n}")


def _chunk(chunk_id: str = "c1", text: str = "The policy has rule 1, rule 2 and rule 3.") -> Chunk:
    return Chunk(chunk_id=chunk_id, doc_id="d1", source="policy.md", text=text, char_start=0, char_end=len(text), n_tokens=9)


def _decide(pair_id: str, decision: str, edited: str | None = None) -> ReviewDecision:
    return ReviewDecision(pair_id=pair_id, decision=decision, edited_query=edited)


# --------------------------------------------------------------------------- decisions


def test_latest_decision_wins_and_reset_clears():
    log = [_decide("a", "reject"), _decide("b", "accept"), _decide("a", "accept"), _decide("b", "reset")]
    latest = latest_decisions(log)
    assert {key: value.decision for key, value in latest.items()} == {"a": "accept"}


def test_apply_review_drops_rejects_and_applies_edits():
    pairs = [_pair(n) for n in range(5)]
    decisions = latest_decisions(
        [
            _decide(pairs[0].pair_id, "accept"),
            _decide(pairs[1].pair_id, "reject"),
            _decide(pairs[2].pair_id, "edit", "  Which rule comes third?  "),
            _decide(pairs[3].pair_id, "edit", pairs[3].query),  # unchanged text: an accept
        ]
    )
    kept, summary = apply_review(pairs, decisions)
    assert [pair.pair_id for pair in kept] == [pairs[n].pair_id for n in (0, 2, 3, 4)]
    assert kept[1].query == "Which rule comes third?" and kept[1].checks["original_query"] == pairs[2].query
    assert summary.counts() == {
        "reviewed": 4, "accepted": 2, "rejected": 1, "edited": 1, "rescued": 0, "unreviewed": 1
    }


def test_edited_query_is_none_unless_the_text_changes():
    assert edited_query(None, "Q?") is None
    assert edited_query(_decide("a", "edit", " Q? "), "Q?") is None
    assert edited_query(_decide("a", "edit", "New?"), "Q?") == "New?"
    assert edited_query(_decide("a", "reject", "New?"), "Q?") is None


def test_rescued_pairs_take_the_id_the_question_would_have_had():
    rejects = [
        Reject(chunk_id="c1", reason="ungrounded", query="Which rule is last?", raw='{"evidence": "rule 3"}'),
        Reject(chunk_id="c1", reason="too similar", query="Which rule is last?"),
        Reject(chunk_id="c1", reason="unparseable", query=None, raw="{not json"),
        Reject(chunk_id="c2", reason="too vague", query="What?"),
    ]
    rescued_id = pair_id_for("c1", "Which rule is last?")
    decisions = latest_decisions([_decide(rescued_id, "rescue"), _decide(pair_id_for("c2", "What?"), "reject")])
    rescued = rescued_pairs(rejects, decisions)
    assert [(pair.pair_id, pair.query, pair.evidence, pair.checks["rescued_from"]) for pair in rescued] == [
        (rescued_id, "Which rule is last?", "rule 3", "ungrounded")
    ]
    kept, summary = apply_review([_pair(1)], decisions, rescued)
    assert len(kept) == 2 and summary.rescued == 1 and summary.accepted == 1


def test_reviewed_pairs_without_review_log_are_pairs_jsonl(tmp_path):
    run = RunDir(tmp_path).ensure()
    pairs = [_pair(n) for n in range(3)]
    write_jsonl(run.pairs, pairs)
    kept, summary = reviewed_pairs(run)
    assert kept == pairs and summary.unreviewed == 3 and summary.reviewed == 0


def test_record_decision_repairs_a_torn_last_line(tmp_path):
    run = RunDir(tmp_path).ensure()
    pairs = [_pair(n) for n in range(2)]
    write_jsonl(run.pairs, pairs)
    record_decision(run, _decide(pairs[0].pair_id, "reject"))
    with run.review.open("a", encoding="utf-8") as log:
        log.write('{"pair_id": "torn", "deci')  # a kill mid-append
    record_decision(run, _decide(pairs[1].pair_id, "reject"))
    assert [decision.pair_id for decision in read_decisions(run)] == [pairs[0].pair_id, pairs[1].pair_id]
    assert reviewed_pairs(run)[0] == []


# --------------------------------------------------------------------------- items


def test_build_items_adds_rescuable_rejects_once_with_every_reason():
    pairs = [_pair(1)]
    rejects = [
        Reject(chunk_id="c1", reason="ungrounded", query="Which rule is last?"),
        Reject(chunk_id="c1", reason="too long", query="which  rule is LAST?"),  # same normalized text
        Reject(chunk_id="c1", reason="duplicate", query=pairs[0].query),  # already a pair
        Reject(chunk_id="c1", reason="unparseable", query=None),
    ]
    items = build_items(pairs, rejects, [_chunk()])
    assert [(item.origin, item.reasons) for item in items] == [
        ("generated", ()),
        ("auto-rejected", ("ungrounded", "too long")),
    ]
    assert items[1].pair_id == pair_id_for("c1", "Which rule is last?")


def test_status_filters_and_counts_follow_the_latest_decision():
    pairs = [_pair(n) for n in range(3)]
    items = build_items(pairs, [Reject(chunk_id="c1", reason="vague", query="Rules?")], [_chunk()])
    reject_item = items[-1]
    decisions = latest_decisions(
        [
            _decide(pairs[0].pair_id, "accept"),
            _decide(pairs[1].pair_id, "edit", "Which is rule two?"),
            _decide(reject_item.pair_id, "rescue"),
        ]
    )
    assert [item_status(item, decisions.get(item.pair_id)) for item in items] == [
        "accepted", "edited", "unreviewed", "rescued"
    ]
    view = present(items[1], decisions[pairs[1].pair_id])
    assert view.query == "Which is rule two?" and view.state()["original_query"] == pairs[1].query
    assert present(reject_item, decisions[reject_item.pair_id]).filters == ("all", "accepted", "auto-rejected")
    assert review_counts(items, decisions) == {
        "reviewed": 3, "unreviewed": 1, "accepted": 2, "rejected": 0, "edited": 1, "auto-rejected": 1, "all": 4
    }


def test_highlight_finds_the_evidence_exactly_loosely_or_fuzzily():
    text = "Passwords must be at least 14 characters long.\nMFA is mandatory for email."
    segments, match = highlight(text, "at least 14 characters")
    assert match == "exact" and [s.text for s in segments if s.marked] == ["at least 14 characters"]
    segments, match = highlight(text, "CHARACTERS LONG.   MFA is")
    assert match == "normalized" and [s.text for s in segments if s.marked] == ["characters long.\nMFA is"]
    segments, match = highlight(text, "MFA is mandatory for e-mail")
    assert match == "fuzzy" and any(s.marked and "mandatory" in s.text for s in segments)
    assert highlight(text, "the hotel cap in Oslo")[1] == "none"
    assert highlight(text, "")[1] == "none"


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=200), st.text(max_size=40))
def test_highlight_never_loses_or_adds_text(text, evidence):
    segments, _ = highlight(text, evidence)
    assert "".join(segment.text for segment in segments) == text
    assert sum(segment.marked for segment in segments) <= 1


def test_check_badges_are_short_and_typed():
    badges = check_badges({"grounded": True, "copy": False, "score": 0.91234, "judge": {"why": "x" * 200}})
    assert [(b.name, b.value, b.passed) for b in badges[:3]] == [
        ("grounded", "passed", True), ("copy", "failed", False), ("score", "0.91", None)
    ]
    assert len(badges[3].value) == 80


def test_loopback_hosts():
    assert all(map(is_loopback, ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.4", "example.com"]))
    assert [host_name(h) for h in ("127.0.0.1:8000", "[::1]:8000", "localhost")] == ["127.0.0.1", "::1", "localhost"]
