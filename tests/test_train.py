"""domainfit.train: the pure rules (fast) and real tiny trainings per loss (slow).

The trainings use a 2-layer BERT built from a config (tests/train_support.py) on the
``tiny_run`` fixture's ~120 real financial pairs, so each runs in seconds on a CPU.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from domainfit.artifacts import Chunk, Pair, RunDir, read_json, read_jsonl, stage_record, write_chunks, write_jsonl
from domainfit.config import SplitConfig, TrainConfig, load_config
from domainfit.errors import ConfigError, TrainingError
from conftest import financial_rows, run_from_rows
from domainfit.splits import Splits, write_splits
from domainfit.models import resolve_matryoshka_dims
from domainfit.train import build_training_set, run_training
from domainfit.train.args import auto_batch_size, training_precision, validation_metric
from domainfit.train.data import build_validation_set, negatives_by_pair
from domainfit.train.args import schedule_arguments, training_arguments
from domainfit.train.card import card_section
from domainfit.train.data import to_datasets
from domainfit.train.checkpoints import last_complete_checkpoint, prepare_checkpoints
from domainfit.train.checks import check_model_fit
from train_support import TINY_DIM, build_tiny_model, write_triplets


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture
def one_thread():
    """The shared 2-core machine runs several suites at once: one torch thread is much faster."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(model: Path, **train):
    overrides = {"base_model": str(model), "train.logging_steps": 1, "train.learning_rate": 1e-3, "train.epochs": 3}
    overrides.update({f"train.{key}": value for key, value in train.items()})
    return load_config(overrides=overrides, environ={})


def pair(pid: str, chunk: str, query: str) -> Pair:
    return Pair(pair_id=pid, chunk_id=chunk, query=query)


# --------------------------------------------------------------------------- precision and arguments


def test_precision_on_cpu_is_fp32_with_plain_adamw():
    kwargs = training_precision(TrainConfig(), cuda_available=False, bf16_supported=False)
    assert kwargs == {"bf16": False, "fp16": False, "optim": "adamw_torch"}


def test_precision_on_a_bf16_gpu_is_bf16_tf32_and_fused_adamw():
    kwargs = training_precision(TrainConfig(), cuda_available=True, bf16_supported=True)
    assert kwargs == {"bf16": True, "fp16": False, "tf32": True, "optim": "adamw_torch_fused"}


def test_precision_on_an_older_gpu_is_fp16_and_fp16_needs_cuda():
    older = training_precision(TrainConfig(), cuda_available=True, bf16_supported=False)
    assert older["fp16"] and not older["bf16"] and "tf32" not in older
    assert training_precision(TrainConfig(precision="fp32"), True, True) == {
        "bf16": False,
        "fp16": False,
        "optim": "adamw_torch_fused",
    }
    with pytest.raises(TrainingError, match="fp16' needs a CUDA GPU"):
        training_precision(TrainConfig(precision="fp16"), cuda_available=False, bf16_supported=False)


def test_default_dims_are_the_model_dim_then_powers_of_two_down_to_64():
    assert resolve_matryoshka_dims(384, None) == [384, 256, 128, 64]
    assert resolve_matryoshka_dims(768, None) == [768, 512, 256, 128, 64]
    assert resolve_matryoshka_dims(128, None) == [128, 64]
    assert resolve_matryoshka_dims(384, [64, 384, 64]) == [384, 64]
    assert resolve_matryoshka_dims(384, []) == []


def test_auto_batch_size_keeps_enough_steps_per_epoch():
    assert [auto_batch_size(n) for n in (5, 100, 1000, 2048, 100_000)] == [16, 16, 32, 128, 128]


def test_best_model_metric_uses_the_evaluators_key_names():
    dims = [384, 256, 128, 64]
    assert validation_metric(None, dims, 384, "cosine") == "eval_dim_128_cosine_ndcg@10"
    assert validation_metric("mrr@10", dims, 384, "cosine") == "eval_dim_128_cosine_mrr@10"
    assert validation_metric("eval_dim_64_cosine_ndcg@10", dims, 384, "cosine") == "eval_dim_64_cosine_ndcg@10"
    assert validation_metric(None, [], 384, "dot") == "eval_dim_384_dot_ndcg@10"
    with pytest.raises(TrainingError, match="metric_for_best_model"):
        validation_metric("dim_512_cosine_ndcg@10", dims, 384, "cosine")


def test_schedule_validates_and_checkpoints_together():
    metric = "eval_dim_64_cosine_ndcg@10"
    epoch = schedule_arguments(TrainConfig(), has_val=True, metric=metric)
    assert epoch == {
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        "load_best_model_at_end": True,
        "metric_for_best_model": metric,
        "greater_is_better": True,
    }
    steps = schedule_arguments(TrainConfig(save_steps=20, eval_steps=10), has_val=True, metric=metric)
    assert (steps["eval_steps"], steps["save_steps"], steps["eval_strategy"]) == (10, 20, "steps")
    no_val = schedule_arguments(TrainConfig(save_steps=5), has_val=False, metric=None)
    assert no_val == {"eval_strategy": "no", "load_best_model_at_end": False, "save_strategy": "steps", "save_steps": 5}
    with pytest.raises(TrainingError, match="multiple of train.eval_steps"):
        schedule_arguments(TrainConfig(save_steps=15, eval_steps=10), has_val=True, metric=metric)


def test_training_arguments_for_ddp_on_cpu_use_gloo_and_no_duplicates():
    kwargs = training_arguments(
        TrainConfig(),
        output_dir="x",
        batch_size=32,
        has_val=False,
        metric=None,
        precision=training_precision(TrainConfig(), False, False),
        world_size=2,
    )
    assert kwargs["ddp_backend"] == "gloo" and kwargs["ddp_find_unused_parameters"] is False
    assert kwargs["batch_sampler"] == "no_duplicates" and kwargs["per_device_train_batch_size"] == 32
    from sentence_transformers import SentenceTransformerTrainingArguments

    single = training_arguments(
        TrainConfig(), output_dir="x", batch_size=8, has_val=False, metric=None, precision={"bf16": False}
    )
    args = SentenceTransformerTrainingArguments(**single)
    assert args.warmup_steps == pytest.approx(0.1) or args.warmup_ratio == pytest.approx(0.1)
    assert args.lr_scheduler_type == "cosine"


# --------------------------------------------------------------------------- data


def test_ntuple_negatives_skip_nulls_and_triplet_nulls_are_an_error():
    rows = [
        {"pair_id": "p1", "negative_1": "n1", "negative_2": None, "negative_10": "n10"},
        {"pair_id": "p2", "negative_1": None, "negative_2": None, "negative_10": None},
    ]
    assert negatives_by_pair(rows) == {"p1": ["n1", "n10"], "p2": []}
    triplets = [{"pair_id": "p1", "negative": "a"}, {"pair_id": "p1", "negative": " "}]
    with pytest.raises(TrainingError, match="'negative' has 1 missing value"):
        negatives_by_pair(triplets, source="runs/x/triplets.parquet")


def test_mnrl_rows_take_k_negatives_and_pairs_short_of_them_keep_what_they_have():
    chunks = {f"c{i}": f"text {i}" for i in range(6)}
    pairs = [pair(f"p{i}", f"c{i}", f"q{i}") for i in range(6)]
    negatives = {
        "p0": ["text 1", "text 2"],
        "p1": ["text 0", "text 2"],
        "p2": ["TEXT  2", "text 3"],  # the first is its own positive: dropped, one left
        "p3": ["text 4"],
        "p4": [],
        "p5": [],
    }
    one = build_training_set(pairs, chunks, negatives, loss="mnrl", negatives_per_pair=1)
    assert one.columns == ("anchor", "positive", "negative_1") and len(one.rows) == 4
    two = build_training_set(pairs, chunks, negatives, loss="cached-mnrl", negatives_per_pair=2)
    assert two.columns == ("anchor", "positive", "negative_1", "negative_2")
    assert [row["anchor"] for row in two.rows] == ["q0", "q1"]
    groups = two.groups()
    assert list(groups) == ["2_negatives", "1_negatives", "0_negatives"]
    assert [row["anchor"] for row in groups["1_negatives"]] == ["q2", "q3"]
    assert groups["1_negatives"][0]["negative_1"] == "text 3" and set(groups["0_negatives"][0]) == {"anchor", "positive"}
    assert two.counts()["pairs_with_negatives"] == 4 and two.counts()["pairs_without_negatives"] == 2
    assert two.dropped_negatives == 1
    dataset = to_datasets(two)
    assert dataset["1_negatives"].column_names == ["anchor", "positive", "negative_1"]
    off = build_training_set(pairs, chunks, negatives, loss="mnrl", use_negatives=False)
    assert off.columns == ("anchor", "positive") and len(off.rows) == 6 and not off.short_rows


def test_pairs_with_a_blank_question_or_chunk_are_dropped_and_counted():
    chunks = {"c1": "alpha", "c2": "beta", "c3": "   "}
    pairs = [pair("p1", "c1", "q1"), pair("p2", "c2", "  "), pair("p3", "c3", "q3"), pair("p4", "c2", "q4")]
    train = build_training_set(pairs, chunks, None, loss="mnrl")
    assert [row["anchor"] for row in train.rows] == ["q1", "q4"]
    assert train.counts()["train_pairs"] == 4 and train.dropped_pairs == 2


def test_a_missing_value_in_any_training_row_is_an_error():
    from domainfit.train.checks import check_training_set
    from domainfit.train.data import TrainingSet

    broken = TrainingSet(
        columns=("anchor", "positive", "negative_1"),
        rows=[{"anchor": "q1", "positive": "p1", "negative_1": ""}, {"anchor": "q2", "positive": "p2", "negative_1": "n"}],
        short_rows=[{"anchor": "q3", "positive": "p3"}],
    )
    with pytest.raises(TrainingError, match="column 'negative_1' has 1 missing value"):
        check_training_set(broken, TrainConfig(), has_triplets=True)


def test_a_negative_with_the_positives_text_is_dropped():
    chunks = {"c1": "The Revenue grew.", "c2": "other"}
    pairs = [pair("p1", "c1", "q1"), pair("p2", "c2", "q2")]
    train = build_training_set(pairs, chunks, {"p1": ["the revenue   grew.", "other"]}, loss="triplet", negatives_per_pair=None)
    assert [row["negative"] for row in train.rows] == ["other"]
    assert train.dropped_negatives == 1 and train.dropped_pairs == 1  # p2 has no negative at all


def test_validation_corpus_is_every_chunk_with_copies_sharing_one_id():
    chunks = [
        Chunk(chunk_id=cid, doc_id=doc, source=f"{doc}.txt", text=text, char_start=0, char_end=len(text), n_tokens=2)
        for cid, doc, text in [("a", "d1", "Same text"), ("b", "d2", "same  TEXT"), ("c", "d2", "else")]
    ]
    val = build_validation_set([pair("p", "b", "question?")], chunks)
    assert set(val.corpus) == {"a", "c"} and val.relevant == {"p": {"a"}} and val.queries == {"p": "question?"}


def test_shared_corpus_validation_equals_one_evaluator_per_dim(tiny_run, tiny_model, one_thread):
    """Encoding the corpus once and slicing it scores exactly like truncate_dim per evaluator."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator, SequentialEvaluator

    from domainfit.artifacts import read_chunks, read_rows
    from domainfit.train.validation import build_evaluator

    pairs = read_rows(tiny_run.pairs, Pair)[:12]
    val = build_validation_set(pairs, read_chunks(tiny_run.chunks))
    model = SentenceTransformer(str(tiny_model), device="cpu")
    shared = build_evaluator(val, [128, 64], 128)(model)
    plain = SequentialEvaluator(
        [InformationRetrievalEvaluator(val.queries, val.corpus, val.relevant, name=f"dim_{d}", truncate_dim=d) for d in (128, 64)]
    )(model)
    assert set(shared) == set(plain) and "dim_64_cosine_ndcg@10" in shared
    assert all(abs(shared[key] - plain[key]) < 1e-6 for key in plain)


# --------------------------------------------------------------------------- checkpoints and card


def _fake_checkpoint(folder: Path, step: int, *, complete: bool = True) -> Path:
    checkpoint = folder / f"checkpoint-{step}"
    checkpoint.mkdir(parents=True)
    (checkpoint / "model.safetensors").write_bytes(b"x")
    (checkpoint / "optimizer.pt").write_bytes(b"x")
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": step}) if complete else '{"glob')
    return checkpoint


def test_a_validation_log_entry_becomes_one_line_with_the_main_metric_at_each_dim():
    from domainfit.train.progress import main_metric_name, validation_line

    logs = {"eval_dim_64_cosine_ndcg@10": 0.5, "eval_dim_384_cosine_ndcg@10": 0.61234, "eval_dim_384_cosine_mrr@10": 0.7,
            "eval_dim_384_dot_ndcg@10": 0.1, "epoch": 1.0}  # fmt: skip
    assert validation_line(logs, step=40, metric="ndcg@10", similarity="cosine") == (
        "validation at step 40 (epoch 1.00): ndcg@10  384: 0.6123  64: 0.5000"
    )
    assert validation_line({"loss": 0.3, "epoch": 0.5}, step=3, metric="ndcg@10", similarity="cosine") is None
    assert main_metric_name("eval_dim_128_cosine_mrr@10") == "mrr@10" and main_metric_name(None) == "ndcg@10"


def test_resume_picks_the_last_complete_checkpoint_and_drops_torn_or_stale_ones(tmp_path):
    folder = tmp_path / "checkpoints"
    _fake_checkpoint(folder, 5)
    _fake_checkpoint(folder, 10)
    _fake_checkpoint(folder, 15, complete=False)
    prepare_checkpoints(folder, {"config": "a", "inputs": "b"})  # no resume.json yet: unknown provenance
    assert last_complete_checkpoint(folder) is None
    _fake_checkpoint(folder, 5)
    _fake_checkpoint(folder, 10)
    _fake_checkpoint(folder, 15, complete=False)
    assert prepare_checkpoints(folder, {"config": "a", "inputs": "b"}) == ["checkpoint-15"]
    assert last_complete_checkpoint(folder) == folder / "checkpoint-10"
    assert sorted(prepare_checkpoints(folder, {"config": "changed", "inputs": "b"})) == ["checkpoint-10", "checkpoint-5"]
    assert last_complete_checkpoint(folder) is None


def test_card_section_states_base_model_sizes_loss_dims_and_metrics():
    text = card_section(
        {
            "base_model": "minilm",
            "loss": "MatryoshkaLoss [384, 64] over MNRL",
            "dims": [384, 64],
            "counts": {"train_pairs": 90, "val_queries": 10, "corpus_chunks": 120, "pairs_with_negatives": 80},
            "best_metric": ["eval_dim_64_cosine_ndcg@10", 0.5],
            "val_metrics": {"384": {"ndcg@10": 0.61}, "64": {"ndcg@10": 0.5}},
        }
    )
    for expected in ("minilm", "MNRL", "384, 64", "90", "10 questions against 120 chunks", "| 384 | 0.6100"):
        assert expected in text


# --------------------------------------------------------------------------- bad input, before training


def _tiny_run_with_pairs(root: Path, n_pairs: int) -> RunDir:
    run = RunDir(root).ensure()
    chunks = [
        Chunk(chunk_id=f"c{i}", doc_id=f"d{i}", source=f"d{i}.txt", text=f"chunk {i} text", char_start=0, char_end=12, n_tokens=3)
        for i in range(6)
    ]
    write_chunks(run.chunks, chunks)
    write_jsonl(run.pairs, [pair(f"p{i}", f"c{i}", f"question {i}?") for i in range(6)])
    defaults = SplitConfig()
    splits = Splits(
        train=[f"p{i}" for i in range(n_pairs)],
        val=["p5"],
        test=["p4"],
        by=defaults.by,
        seed=defaults.seed,
        test_fraction=defaults.test_fraction,
        val_fraction=defaults.val_fraction,
    )
    write_splits(run, splits)
    return run


@pytest.mark.parametrize("n_pairs, message", [(0, "has no pairs"), (1, "has 1 pair")])
def test_empty_or_one_pair_training_set_fails_before_training(tmp_path, tiny_model, n_pairs, message):
    run = _tiny_run_with_pairs(tmp_path / "run", n_pairs)
    with pytest.raises(TrainingError, match=message):
        run_training(run, tiny_config(tiny_model), progress=False)
    assert not run.checkpoints_dir.exists() and not run.model_dir.exists()
    assert stage_record(run, "train").status == "failed"


def test_triplet_loss_without_mined_negatives_fails_with_the_fix(tiny_run, tiny_model):
    with pytest.raises(TrainingError, match="run `domainfit mine` first"):
        run_training(tiny_run, tiny_config(tiny_model, loss="triplet"), progress=False)


def test_triplet_file_with_a_missing_negative_fails(tiny_run, tiny_model):
    write_triplets(tiny_run, fmt="triplet", n=2)
    import pyarrow.parquet as pq

    table = pq.read_table(tiny_run.triplets).to_pylist()
    table[3]["negative"] = None
    from domainfit.artifacts import write_parquet

    write_parquet(tiny_run.triplets, table)
    with pytest.raises(TrainingError, match=r"triplets.parquet: column 'negative' has 1 missing value"):
        run_training(tiny_run, tiny_config(tiny_model, loss="triplet"), progress=False)


def test_dims_larger_than_the_model_and_mini_batch_above_batch_fail(tiny_run, tiny_model):
    with pytest.raises(TrainingError, match=r"matryoshka_dims \[256\] exceed the model's 128 dims"):
        run_training(tiny_run, tiny_config(tiny_model, matryoshka_dims=[256, 64]), progress=False)
    with pytest.raises(TrainingError, match=r"mini_batch_size \(64\) is larger than train.batch_size \(16\)"):
        run_training(tiny_run, tiny_config(tiny_model, batch_size=16, mini_batch_size=64), progress=False)
    assert not tiny_run.checkpoints_dir.exists()
    check_model_fit(TrainConfig(batch_size=16, mini_batch_size=64, loss="mnrl"), model_dim=8, dims=[8], batch_size=16, mini_batch_size=64)


# --------------------------------------------------------------------------- real trainings (slow)


def _losses(run: RunDir) -> list[float]:
    return [row["loss"] for row in read_jsonl(run.root / "train_log.jsonl") if "loss" in row]


def _assert_loss_went_down(run: RunDir) -> None:
    losses = _losses(run)
    assert len(losses) >= 6
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.8 * first, losses


def _assert_model_encodes_at_each_dim(model_dir: Path, dims: list[int]) -> None:
    from sentence_transformers import SentenceTransformer

    for dim in dims:
        model = SentenceTransformer(str(model_dir), truncate_dim=dim, device="cpu")
        assert model.encode(["What was the revenue?", "Net income fell."]).shape == (2, dim)


@pytest.mark.slow
def test_cli_trains_on_what_mine_wrote_and_writes_a_loadable_model_with_card(
    tiny_run, tiny_model, tmp_path, one_thread, capsys
):
    from domainfit.cli import main

    config = tmp_path / "run.toml"
    config.write_text(
        f'base_model = "{tiny_model}"\n[train]\nlogging_steps = 1\nlearning_rate = 1e-3\nepochs = 3\n'
        "[mining]\nrelative_margin = 0.0\nnum_negatives = 2\n",
        encoding="utf-8",
    )
    for verb in (["mine"], ["train", "--loss", "mnrl", "--no-progress"]):
        with pytest.raises(SystemExit) as exit_info:
            main([verb[0], str(tiny_run.root), "--config", str(config), *verb[1:]])
        assert exit_info.value.code in (0, None)
    captured = capsys.readouterr()
    printed = captured.out
    assert "MatryoshkaLoss [128, 64] over MultipleNegativesRankingLoss" in printed and "validation ndcg@10" in printed
    # readable terminal output: one line per validation with the main metric at each dim, no raw dicts
    validations = [line for line in captured.err.splitlines() if line.startswith("validation at step")]
    assert validations and all(re.search(r": ndcg@10  128: 0\.\d{4}  64: 0\.\d{4}$", line) for line in validations)
    assert "{'loss'" not in captured.err + printed and "'eval_dim_" not in captured.err + printed
    logged = read_jsonl(tiny_run.root / "logs" / "train.log")  # the full log, every metric
    assert any("loss" in row for row in logged)
    assert sum("eval_dim_64_cosine_ndcg@10" in row for row in logged) == len(validations)

    _assert_loss_went_down(tiny_run)
    _assert_model_encodes_at_each_dim(tiny_run.model_dir, [TINY_DIM, 64])
    card = (tiny_run.model_dir / "README.md").read_text(encoding="utf-8")
    assert "## Trained with domainfit" in card and "MultipleNegativesRankingLoss" in card
    assert str(tiny_model) in card and "| 64 |" in card
    info = read_json(tiny_run.model_dir / "domainfit_training.json")
    assert info["dims"] == [128, 64] and info["counts"]["train_pairs"] > 50 and info["val_metrics"]
    assert info["counts"]["pairs_with_negatives"] > 0 and info["counts"]["negatives_per_row"] == 1
    record = stage_record(tiny_run, "train")
    assert record.status == "done" and record.counts["train_pairs"] == info["counts"]["train_pairs"]
    assert record.details["best_metric"][0] == "eval_dim_64_cosine_ndcg@10"
    assert not tiny_run.checkpoints_dir.exists()  # removed once the model is written


@pytest.mark.slow
def test_cached_mnrl_trains_on_mined_ntuples_with_missing_negatives(tiny_run, tiny_model, one_thread):
    write_triplets(tiny_run, fmt="n-tuple", n=2, holes=15)
    result = run_training(
        tiny_run, tiny_config(tiny_model, negatives_per_pair=2, batch_size=16, mini_batch_size=4), progress=False
    )
    counts = result.counts()
    assert counts["negatives_per_row"] == 2 and counts["pairs_with_fewer_negatives"] > 0
    assert counts["pairs_with_negatives"] == counts["train_pairs"] - counts["dropped_pairs"]
    assert "CachedMultipleNegativesRankingLoss" in result.loss and result.mini_batch_size == 4
    _assert_loss_went_down(tiny_run)
    _assert_model_encodes_at_each_dim(result.model_dir, [64])


@pytest.mark.slow
def test_triplet_loss_trains_on_triplet_rows(tiny_run, tiny_model, one_thread):
    write_triplets(tiny_run, fmt="triplet", n=2)
    config = tiny_config(tiny_model, loss="triplet", matryoshka_dims=[])
    config.train.negatives_per_pair = None  # all mined (TOML has no null; the Python API does)
    result = run_training(tiny_run, config, progress=False)
    assert result.counts()["train_rows"] == 2 * result.counts()["train_pairs"] and result.dims == []
    assert result.loss.startswith("TripletLoss (cosine, margin 0.3)")
    _assert_loss_went_down(tiny_run)
    _assert_model_encodes_at_each_dim(result.model_dir, [TINY_DIM])


@pytest.mark.slow
@pytest.mark.parametrize("distillation", [0.0, 1.0], ids=["plain", "distilled"])  # distilled: the teacher's weights are the base
def test_base_merge_ratio_writes_a_model_halfway_between_base_and_tuned(
    tiny_run, tiny_model, one_thread, tmp_path, distillation
):
    import torch
    from sentence_transformers import SentenceTransformer

    tuned_run = run_from_rows(tmp_path / "tuned", financial_rows(120))
    settings = {"epochs": 1, "seed": 7, "base_distillation": distillation}
    run_training(tuned_run, tiny_config(tiny_model, base_merge_ratio=0.0, **settings), progress=False)
    result = run_training(tiny_run, tiny_config(tiny_model, base_merge_ratio=0.5, **settings), progress=False)

    def weights(path):
        return SentenceTransformer(str(path), device="cpu").state_dict()

    base, tuned, merged = weights(tiny_model), weights(tuned_run.model_dir), weights(result.model_dir)
    name = next(key for key in base if key.endswith("query.weight"))
    assert not torch.allclose(tuned[name], base[name])
    assert torch.allclose(merged[name], (tuned[name] + base[name]) / 2, atol=1e-6)
    assert result.base_merge_ratio == 0.5 and "WiSE-FT" in result.summary()
    assert read_json(result.model_dir / "domainfit_training.json")["base_merge_ratio"] == 0.5


@pytest.mark.slow
def test_auto_merge_ratio_is_chosen_on_validation_and_recorded(tiny_run, tiny_model, one_thread):
    config = tiny_config(tiny_model, epochs=1, seed=7, base_merge_ratio="auto", merge_ratio_grid=[0.0, 0.5])
    result = run_training(tiny_run, config, progress=False)

    scores = result.merge_ratio_scores
    assert list(scores) == [0.0, 0.5] and result.base_merge_ratio == max(scores, key=lambda r: (scores[r], r))
    assert result.best_metric[1] == pytest.approx(scores[result.base_merge_ratio])  # the kept model's validation
    assert "chosen on validation from 0: " in result.summary()
    card = read_json(result.model_dir / "domainfit_training.json")
    assert card["base_merge_ratio"] == result.base_merge_ratio and set(card["merge_ratio_scores"]) == {"0", "0.5"}


def test_a_merge_ratio_that_is_neither_a_share_nor_auto_is_refused():
    with pytest.raises(ConfigError, match="base_merge_ratio"):
        load_config(overrides={"train.base_merge_ratio": "best"}, environ={})
    with pytest.raises(ConfigError, match="merge_ratio_grid"):
        load_config(overrides={"train.merge_ratio_grid": [0.5, 1.5]}, environ={})
