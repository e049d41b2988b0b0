"""domainfit rerank: cross-encoder rows per loss, the re-ranker's resolution, two-stage metrics,
and a real tiny cross-encoder trained on a real run (slow).

The tiny cross-encoder is a 2-layer BERT with a one-logit head built from a config and
the packaged MiniLM's tokenizer: a real Hugging Face sequence-classification folder,
so ``CrossEncoder(path)`` loads it and it trains in seconds on a CPU.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from domainfit.artifacts import Pair, RunDir, read_json, stage_record
from domainfit.config import SplitConfig, load_config
from domainfit.errors import ModelNotFoundError, TrainingError
from domainfit.models import DEFAULT_CROSS_ENCODER, is_cross_encoder_dir, resolve_cross_encoder
from domainfit.rerank import choose_loss, pool_by_document, ranking_metrics, rerank_rows
from test_eval_queries import real_queries_file
from train_support import build_tiny_model, write_triplets


def build_tiny_cross_encoder(folder: Path) -> Path:
    """Save a randomly initialised 2-layer BERT with a one-logit head to ``folder/ce``."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from domainfit.models import resolve

    target = folder / "ce"
    if (target / "config.json").exists():
        return target
    tokenizer = AutoTokenizer.from_pretrained(str(resolve("minilm")))
    tokenizer.model_max_length = 128
    tokenizer.save_pretrained(str(target))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=128, num_labels=1)
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(str(target))
    return target


def pair(pid: str, chunk: str, query: str) -> Pair:
    return Pair(pair_id=pid, chunk_id=chunk, query=query)


CHUNKS = {"c1": "Revenue rose 5% to $10 billion.", "c2": "Net income fell.", "c3": "The CEO resigned."}
PAIRS = [pair("p1", "c1", "How much did revenue grow?"), pair("p2", "c2", "What happened to net income?")]
NEGATIVES = {"p1": ["Net income fell.", "revenue ROSE 5% to $10 billion.", "The CEO resigned."], "p2": ["The CEO resigned."]}


def test_bce_rows_label_the_positive_1_and_each_mined_negative_0_without_copies_of_the_positive():
    rows = rerank_rows(PAIRS, CHUNKS, NEGATIVES, loss="bce", negatives_per_pair=3)
    assert [(row["query"][:8], row["document"][:8], row["label"]) for row in rows] == [
        ("How much", "Revenue ", 1.0), ("How much", "Net inco", 0.0), ("How much", "The CEO ", 0.0),
        ("What hap", "Net inco", 1.0), ("What hap", "The CEO ", 0.0),
    ]


def test_lambda_rows_are_one_list_per_question_and_mnrl_rows_keep_as_many_negatives_as_every_pair_has():
    listwise = rerank_rows(PAIRS, CHUNKS, NEGATIVES, loss="lambda", negatives_per_pair=1)
    assert listwise[0] == {"query": PAIRS[0].query, "docs": [CHUNKS["c1"], CHUNKS["c2"]], "labels": [1.0, 0.0]}
    ranking = rerank_rows(PAIRS, CHUNKS, NEGATIVES, loss="mnrl", negatives_per_pair=3)
    assert [sorted(row) for row in ranking] == [["negative_1", "positive", "query"]] * 2


def test_without_mined_negatives_bce_falls_back_to_in_batch_negatives_and_says_to_run_mine():
    assert choose_loss("bce", has_negatives=True) == ("bce", None)
    loss, note = choose_loss("lambda", has_negatives=False)
    assert loss == "mnrl" and "in-batch negatives" in note and "domainfit mine" in note
    with pytest.raises(TrainingError, match="at least 2 training pairs"):
        rerank_rows(PAIRS[:1], CHUNKS, None, loss="mnrl", negatives_per_pair=1)


def test_ranking_metrics_are_the_ir_evaluators():
    queries = {"q1": "a", "q2": "b"}
    corpus = {"c1": "x", "c2": "y", "c3": "z"}
    relevant = {"q1": {"c1"}, "q2": {"c3"}}
    ranking = {"q1": [("c1", 0.9), ("c2", 0.1)], "q2": [("c1", 0.8), ("c2", 0.5), ("c3", 0.4)]}
    metrics = ranking_metrics(queries, corpus, relevant, ranking)
    assert metrics["mrr@10"] == pytest.approx((1 + 1 / 3) / 2, abs=1e-4)
    assert metrics["ndcg@10"] == pytest.approx((1 + 0.5) / 2, abs=1e-4)  # 1/log2(4) = 0.5


def test_real_queries_rank_documents_at_their_best_retrieved_chunk():
    ranking = {"q": [("a1", 0.9), ("b1", 0.7), ("a2", 0.95), ("c1", 0.1)]}
    pooled = pool_by_document(ranking, {"a1": "a.txt", "a2": "a.txt", "b1": "b.txt", "c1": "c.txt", "d1": "d.txt"})
    assert pooled == {"q": [("a.txt", 0.95), ("b.txt", 0.7), ("c.txt", 0.1)]}  # d.txt was never retrieved


def test_reranker_resolution_offline(tmp_path, minilm_path):
    location, fresh = resolve_cross_encoder("minilm")
    assert fresh and Path(location) == Path(minilm_path)
    location, fresh = resolve_cross_encoder(DEFAULT_CROSS_ENCODER)  # not cached, downloads off
    assert fresh and Path(location) == Path(minilm_path)
    tiny = build_tiny_cross_encoder(tmp_path)
    assert is_cross_encoder_dir(tiny) and resolve_cross_encoder(str(tiny)) == (str(tiny.resolve()), False)
    assert not is_cross_encoder_dir(minilm_path)
    with pytest.raises(ModelNotFoundError, match="is not a cross-encoder"):
        resolve_cross_encoder(str(minilm_path))
    with pytest.raises(ModelNotFoundError, match="downloads are off"):
        resolve_cross_encoder("someone/unknown-reranker")


def test_cli_reranker_that_is_not_a_cross_encoder_is_one_line(tiny_run, minilm_path, capsys):
    from domainfit.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["rerank", str(tiny_run.root), "--reranker", str(minilm_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "is not a cross-encoder" in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2


@pytest.fixture
def split_run(tiny_run: RunDir) -> RunDir:
    from domainfit.splits import ensure_splits

    ensure_splits(tiny_run, SplitConfig(by="chunk"))
    return tiny_run


def _config(tmp_path: Path, cross_encoder: Path, **rerank):
    overrides = {
        "base_model": str(build_tiny_model(tmp_path / "bi")),
        "split.by": "chunk",
        "rerank.base_model": str(cross_encoder),
        "rerank.max_length": 64,
        "rerank.learning_rate": 1e-3,
        "rerank.logging_steps": 1,
        "rerank.epochs": 2,
        "rerank.top_k": 10,
    }
    overrides.update({f"rerank.{key}": value for key, value in rerank.items()})
    return load_config(overrides=overrides, environ={})


@pytest.mark.slow
def test_rerank_trains_a_loadable_cross_encoder_and_reports_every_combination(split_run, tmp_path):
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder

    from domainfit.rerank import run_rerank

    torch.set_num_threads(1)
    write_triplets(split_run, n=2)
    shutil.copytree(build_tiny_model(tmp_path / "bi"), split_run.model_dir)  # a "fine-tuned" bi-encoder
    config = _config(tmp_path, build_tiny_cross_encoder(tmp_path))
    config.train.report_to = "tensorboard"
    config.eval.queries = str(real_queries_file(tmp_path / "real.jsonl", split_run))
    result = run_rerank(split_run, config, progress=False)

    assert result.loss == "bce" and result.loss_note is None and not result.fresh_head
    assert result.counts["pairs_with_negatives"] == result.counts["train_pairs"] > 50
    assert result.counts["train_rows"] == 3 * result.counts["train_pairs"]
    assert result.best_metric is not None  # validation ran and kept a checkpoint
    model = CrossEncoder(str(result.model_dir), device="cpu")
    scores = model.predict([("What was the revenue?", "Revenue was $5 billion."), ("a", "b")])
    assert scores.shape == (2,)
    assert "## Trained with domainfit" in (result.model_dir / "README.md").read_text(encoding="utf-8")

    metrics = read_json(split_run.rerank_dir / "metrics.json")
    setups = [row["setup"] for row in metrics["rows"]]
    assert setups == [
        "base (dense top 10)", "base + base reranker", "base + finetuned reranker",
        "finetuned (dense top 10)", "finetuned + base reranker", "finetuned + finetuned reranker",
    ]
    for row in metrics["rows"]:
        assert 0 <= row["ndcg@10"] <= 1 and 0 <= row["mrr@10"] <= 1 and row["ms_per_query"] > 0
    dense, reranked = metrics["rows"][0], metrics["rows"][2]
    assert reranked["ms_per_query"] > dense["ms_per_query"]  # re-scoring k pairs costs more than one search
    real = metrics["real_queries"]  # the same six setups on the real queries, judged by document
    assert [row["setup"] for row in real["rows"]] == setups
    assert real["meta"]["source"] == "real.jsonl" and real["meta"]["unknown"]["dropped_queries"] == 1
    assert all(0 <= row["ndcg@10"] <= 1 for row in real["rows"])
    assert real["rows"][0]["ndcg@10"] != metrics["rows"][0]["ndcg@10"]  # a different question set, not a copy
    report = (split_run.rerank_dir / "report.md").read_text(encoding="utf-8")
    assert "| base + finetuned reranker |" in report
    assert report.index("**Real queries** (") < report.index("**Generated test questions** (")
    record = stage_record(split_run, "rerank")
    assert record.status == "done" and record.counts["train_pairs"] == result.counts["train_pairs"]
    assert not (split_run.root / "rerank_checkpoints").exists()

    from test_tracking import _scalars
    from domainfit.tracking import tensorboard_dir

    scalars = _scalars(tensorboard_dir(split_run))
    assert scalars["train/loss"] and scalars["eval/val_ndcg@10"]  # the training curve, in the run's tracker
    assert scalars["rerank/base + finetuned reranker/ndcg@10"] == [pytest.approx(metrics["rows"][2]["ndcg@10"])]


def test_a_queries_file_naming_no_document_of_the_run_fails_before_training(split_run, tmp_path, capsys):
    from domainfit.cli import main

    queries = tmp_path / "q.jsonl"
    queries.write_text('{"query": "q", "relevant": ["elsewhere/a.txt"]}\n', encoding="utf-8")
    config = tmp_path / "run.toml"
    config.write_text(f'[split]\nby = "chunk"\n[rerank]\nbase_model = "{build_tiny_cross_encoder(tmp_path)}"\n',
                      encoding="utf-8")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["rerank", str(split_run.root), "--config", str(config), "--queries", str(queries), "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "none of the 1 queries names a document of the run" in err and len(err.splitlines()) <= 2
    assert not (split_run.rerank_dir / "model").exists()


@pytest.mark.slow
def test_rerank_without_mined_negatives_trains_with_in_batch_negatives(split_run, tmp_path, capsys):
    import torch

    from domainfit.cli import main

    torch.set_num_threads(1)
    config = tmp_path / "run.toml"
    config.write_text(
        f'base_model = "{build_tiny_model(tmp_path / "bi")}"\n[split]\nby = "chunk"\n'
        f'[rerank]\nbase_model = "{build_tiny_cross_encoder(tmp_path)}"\nmax_length = 64\nmax_steps = 4\n'
        "validation = false\ntop_k = 5\n",
        encoding="utf-8",
    )
    with pytest.raises(SystemExit) as exit_info:
        main(["rerank", str(split_run.root), "--config", str(config), "--no-progress"])
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "MultipleNegativesRankingLoss" in printed and "run `domainfit mine RUN`" in printed
    rows = read_json(split_run.rerank_dir / "metrics.json")["rows"]
    assert [row["setup"] for row in rows] == ["base (dense top 5)", "base + base reranker", "base + finetuned reranker"]
