"""Questions a person writes for a chunk: stored as origin 'human', kept out of training
and of the generated splits, evaluated as the headline at chunk level."""

from __future__ import annotations

import json

import pytest

from conftest import financial_rows, run_from_rows
from domainfit.artifacts import read_chunks, read_jsonl, read_manifest
from domainfit.config import RunConfig, SplitConfig
from domainfit.errors import ReviewError
from domainfit.evaluate import run_evaluation
from domainfit.review import human_pairs, reviewed_pairs, write_human_pair
from domainfit.splits import ensure_splits, make_splits, read_splits, write_splits
from test_review_server import make_review_run, served

CONFIG = RunConfig.model_validate({"eval": {"dims": [384, 64]}})


def test_a_human_question_is_stored_once_as_origin_human(tmp_path):
    run = run_from_rows(tmp_path / "run", financial_rows(20, stride=150))
    chunk = read_chunks(run.chunks)[0]
    pair = write_human_pair(run, chunk.chunk_id, "  What did  revenue do? ")
    again = write_human_pair(run, chunk.chunk_id, "What did revenue do?")
    assert pair == again and pair.query == "What did revenue do?" and pair.origin == "human"
    rows = read_jsonl(run.human)
    assert len(rows) == 1 and rows[0]["origin"] == "human" and rows[0]["generator"]["model"] == "human"
    assert human_pairs(run) == [pair]
    with pytest.raises(ReviewError, match="cannot be empty"):
        write_human_pair(run, chunk.chunk_id, "   ")


def test_human_pairs_never_reach_training_or_the_generated_splits(tmp_path):
    run = run_from_rows(tmp_path / "run", financial_rows(40, stride=150))
    chunks = read_chunks(run.chunks)
    before = make_splits(reviewed_pairs(run)[0], chunks, SplitConfig())
    written = [write_human_pair(run, chunk.chunk_id, f"question {n} about {chunk.source}")
               for n, chunk in enumerate(chunks[:6])]
    # even if a human row is passed straight to the splitter, it lands in 'human' only
    pairs = [*reviewed_pairs(run)[0], *human_pairs(run)]
    assert all(pair.origin == "generated" for pair in reviewed_pairs(run)[0])
    splits = make_splits(pairs, chunks, SplitConfig())
    ids = {pair.pair_id for pair in written}
    assert splits.human == [pair.pair_id for pair in written]
    assert not ids & set(splits.train + splits.val + splits.test)
    assert (splits.train, splits.val, splits.test) == (before.train, before.val, before.test)
    assert splits.counts()["human"] == 6
    write_splits(run, splits, pairs)
    assert read_splits(run).human == splits.human
    assert [row["pair_id"] for row in read_jsonl(run.split_file("human"))] == splits.human
    assert "human" not in before.counts()


def test_ensure_splits_puts_human_questions_in_the_human_set(tmp_path):
    run = run_from_rows(tmp_path / "run", financial_rows(40, stride=150))
    chunk = read_chunks(run.chunks)[3]
    pair = write_human_pair(run, chunk.chunk_id, "a question a person wrote")
    splits = ensure_splits(run, SplitConfig())
    assert splits.human == [pair.pair_id] and pair.pair_id not in splits.train + splits.val + splits.test


def test_human_questions_are_the_headline_at_chunk_level(tmp_path, minilm_path):
    run = run_from_rows(tmp_path / "run", financial_rows(40, stride=150))
    chunks = read_chunks(run.chunks)
    rows = financial_rows(40, stride=150)
    # people's questions: the dataset's own question for each chunk, reworded by a person
    for row in rows[:12]:
        chunk = next(chunk for chunk in chunks if chunk.text == row["context"].strip())
        write_human_pair(run, chunk.chunk_id, "In short: " + row["question"].lower())
    run.model_dir.symlink_to(minilm_path, target_is_directory=True)
    result = run_evaluation(run, CONFIG)
    assert result.evidence == "human" and result.headline is result.human_metrics
    human = json.loads((run.eval_dir / "human" / "metrics.json").read_text())
    assert human["meta"]["evidence"] == "human" and human["meta"]["queries"] == 12
    assert human["meta"]["corpus"] == len(chunks)  # chunk level: ranked over chunks
    assert {"base", "finetuned", "bm25", "base+bm25", "finetuned+bm25"} <= set(human)
    report = (run.eval_dir / "report.md").read_text()
    assert "Headline evidence: **questions people wrote on the review page" in report
    assert report.index("questions people wrote") < report.index("## Below the headline: synthetic questions")
    # the same weights: a tie, not better: not promoted, on the human evidence
    assert result.verdict.evidence == "human" and result.verdict.promoted is False
    assert read_manifest(run)["stages"]["eval"]["counts"]["human_queries"] == 12


@pytest.mark.slow
def test_the_review_api_writes_human_questions(tmp_path):
    fixture = make_review_run(tmp_path / "run")
    chunk = read_chunks(fixture.run.chunks)[0]
    with served(fixture.run) as (server, client):
        response = client.post("/api/human", json={"chunk_id": chunk.chunk_id, "query": "How long is a pass valid?"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["pair"]["origin"] == "human" and body["questions"] == ["How long is a pass valid?"]
        assert body["counts"]["human"] == 1
        unknown = client.post("/api/human", json={"chunk_id": "nope", "query": "q"})
        assert unknown.status_code == 404 and unknown.text.strip() == "unknown chunk_id 'nope'"
        blank = client.post("/api/human", json={"chunk_id": chunk.chunk_id, "query": "   "})
        assert blank.status_code == 400 and "cannot be empty" in blank.text
        extra = client.post("/api/human", json={"chunk_id": chunk.chunk_id, "query": "q", "decision": "accept"})
        assert extra.status_code == 400
        assert "How long is a pass valid?" in client.get("/").text
    assert [row["query"] for row in read_jsonl(fixture.run.human)] == ["How long is a pass valid?"]
    assert not fixture.run.review.exists()  # not a review decision
