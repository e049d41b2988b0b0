"""Distillation from the base model (train.base_distillation)."""

from __future__ import annotations

import pytest
import torch

from conftest import financial_rows, run_from_rows
from domainfit.artifacts import Pair, read_chunks, read_json, read_jsonl, read_rows, write_jsonl
from domainfit.config import TrainConfig, load_config
from domainfit.errors import ConfigError
from domainfit.train import run_training
from domainfit.train.distillation import in_batch_kl
from domainfit.train.inputs import written_by_generator
from domainfit.train.losses import build_loss, resolve_distillation
from train_support import TINY_DIM, build_tiny_model


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


def columns(seed: int, rows: int = 4, dim: int = 8, n_columns: int = 3) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(rows, dim, generator=generator) for _ in range(n_columns)]


def test_a_student_that_ranks_as_the_base_does_costs_nothing():
    teacher = columns(seed=0)
    assert in_batch_kl(teacher, teacher, dim=8, scale=20.0).item() == pytest.approx(0.0, abs=1e-6)
    scaled = [2.5 * column for column in teacher]  # cosine scores ignore the length
    assert in_batch_kl(scaled, teacher, dim=8, scale=20.0).item() == pytest.approx(0.0, abs=1e-6)


def test_a_prefix_is_scored_against_the_whole_base_embedding():
    teacher = columns(seed=0)
    assert in_batch_kl(teacher, teacher, dim=2, scale=20.0).item() > 0.01  # two values rank differently from eight
    assert in_batch_kl(columns(seed=1), teacher, dim=8, scale=20.0).item() > 0.1


def test_every_query_is_ranked_against_every_candidate_of_the_batch():
    teacher = columns(seed=0, n_columns=3)
    student = [column.clone().requires_grad_() for column in columns(seed=1, n_columns=3)]
    in_batch_kl(student, teacher, dim=8, scale=20.0).backward()
    assert all(column.grad is not None and column.grad.abs().sum() > 0 for column in student)


def test_a_negative_weight_is_refused():
    with pytest.raises(ConfigError, match="base_distillation"):
        load_config(overrides={"train.base_distillation": -1}, environ={})


SYNTH_GENERATOR = {"model": "gemma-3-270m-q4_k_m", "prompt_version": "synth-v3", "prompt_style": "completion"}


def test_a_question_synth_wrote_counts_as_generated_until_a_person_edits_it():
    synth = Pair(pair_id="a", chunk_id="c", query="What is stocked in Leeds?", generator=SYNTH_GENERATOR)
    assert written_by_generator(synth)
    assert not written_by_generator(synth.model_copy(update={"checks": {"edited": True}}))
    assert not written_by_generator(Pair(pair_id="b", chunk_id="c", query="What is stocked in Leeds?"))
    assert not written_by_generator(synth.model_copy(update={"generator": {"model": "legal-rag", "prompt_version": "dataset"}}))


def test_auto_distils_when_most_training_pairs_are_generated_and_keeps_a_given_weight():
    assert resolve_distillation(TrainConfig(), generated_share=1.0).base_distillation == 1.0
    assert resolve_distillation(TrainConfig(), generated_share=0.5).base_distillation == 1.0
    assert resolve_distillation(TrainConfig(), generated_share=0.4).base_distillation == 0.0
    assert resolve_distillation(TrainConfig(base_distillation=0.3), generated_share=0.0).base_distillation == 0.3
    assert resolve_distillation(TrainConfig(base_distillation=0), generated_share=1.0).base_distillation == 0


def test_an_unresolved_auto_weight_is_refused_by_build_loss(tiny_model):
    from sentence_transformers import SentenceTransformer

    with pytest.raises(ConfigError, match="resolve"):
        build_loss(SentenceTransformer(str(tiny_model), device="cpu"), TrainConfig(), dims=[TINY_DIM])


def _loss_and_gradients(model_dir, *, cached: bool, texts: list[list[str]]):
    """The distilled loss's two parts and every parameter's gradient, for one batch, without dropout."""
    from sentence_transformers import SentenceTransformer

    from domainfit.train.distillation import BaseDistillationLoss

    model = SentenceTransformer(str(model_dir), device="cpu")
    model.eval()  # no dropout: the two ways must see the same embeddings
    ranking = build_loss(model, TrainConfig(loss="cached-mnrl" if cached else "mnrl", base_distillation=0),
                         dims=[TINY_DIM, 8], mini_batch_size=2)
    loss = BaseDistillationLoss(model, ranking, dims=[TINY_DIM, 8], weight=2.0, scale=20.0)
    loss.eval()
    with torch.no_grad():  # move the student away from the teacher, the same way for both
        generator = torch.Generator().manual_seed(3)
        for parameter in model.parameters():
            parameter.add_(0.02 * torch.randn(parameter.shape, generator=generator))
    parts = loss([model.tokenize(column) for column in texts], None)
    sum(parts.values()).backward()
    gradients = {name: parameter.grad.clone() for name, parameter in model.named_parameters() if parameter.grad is not None}
    return {name: value.item() for name, value in parts.items()}, gradients, loss.shares_embeddings


def test_with_cached_mnrl_the_term_rides_on_its_cached_embeddings_with_the_same_gradients(tiny_model):
    texts = [
        ["Where are spare bearings stocked?", "How long is a contractor pass valid?", "Who audits the turbines?"],
        ["Spare bearings are stocked in Leeds.", "A contractor pass is valid for a day.", "Turbines are audited yearly."],
        ["The canteen opens at noon.", "Parking is behind building B.", "The museum closes on Mondays."],
    ]
    fused, fused_gradients, shares = _loss_and_gradients(tiny_model, cached=True, texts=texts)
    separate, separate_gradients, separate_shares = _loss_and_gradients(tiny_model, cached=False, texts=texts)
    assert shares and not separate_shares
    assert fused["distillation"] > 0 and fused == pytest.approx(separate, rel=1e-4)
    assert set(fused_gradients) == set(separate_gradients)
    for name, gradient in fused_gradients.items():
        torch.testing.assert_close(gradient, separate_gradients[name], rtol=1e-3, atol=1e-5, msg=name)


def _base_kl(model_dir, base_dir, texts: list[str]) -> float:
    """KL of the base model's ranking of ``texts`` (first half queries, second half candidates) from the model's."""
    from sentence_transformers import SentenceTransformer

    half = len(texts) // 2

    def encode(path):
        vectors = SentenceTransformer(str(path), device="cpu").encode(texts, convert_to_tensor=True)
        return [vectors[:half], vectors[half:]]

    return in_batch_kl(encode(model_dir), encode(base_dir), dim=TINY_DIM, scale=20.0).item()


@pytest.mark.slow
def test_distillation_keeps_the_trained_model_closer_to_the_base_model_and_logs_its_term(tiny_model, tmp_path):
    torch.set_num_threads(1)

    def train(name: str, weight: float):
        run = run_from_rows(tmp_path / name, financial_rows(120))
        overrides = {
            "base_model": str(tiny_model), "train.learning_rate": 1e-3, "train.epochs": 2, "train.logging_steps": 1,
            "train.base_merge_ratio": 0.0, "train.base_distillation": weight, "train.seed": 7,
        }
        return run, run_training(run, load_config(overrides=overrides, environ={}), progress=False)

    plain_run, plain = train("plain", 0.0)
    distilled_run, distilled = train("distilled", 10.0)

    texts = [chunk.text for chunk in read_chunks(plain_run.chunks)][:64]
    assert _base_kl(distilled.model_dir, tiny_model, texts) < _base_kl(plain.model_dir, tiny_model, texts)
    logged = [entry for entry in read_jsonl(distilled_run.root / "train_log.jsonl") if "loss" in entry]
    assert logged and all(entry["distillation"] >= 0 and "ranking" in entry for entry in logged)
    assert "distillation from the base model" in distilled.loss and "distillation" not in plain.loss
    assert distilled.loss_config["name"] == "CachedMultipleNegativesRankingLoss"


def _as_written_by_synth(run) -> None:
    pairs = [pair.model_copy(update={"generator": SYNTH_GENERATOR}) for pair in read_rows(run.pairs, Pair)]
    write_jsonl(run.pairs, pairs)


@pytest.mark.slow
def test_auto_distils_on_pairs_synth_wrote_and_not_on_a_data_sets_own(tiny_model, tmp_path):
    torch.set_num_threads(1)
    overrides = {"base_model": str(tiny_model), "train.epochs": 1, "train.logging_steps": 1, "train.seed": 7}
    config = load_config(overrides=overrides, environ={})
    assert config.train.base_distillation == "auto"

    generated = run_from_rows(tmp_path / "generated", financial_rows(60))
    _as_written_by_synth(generated)
    distilled = run_training(generated, config, progress=False)
    own = run_training(run_from_rows(tmp_path / "own", financial_rows(60)), config, progress=False)

    assert distilled.base_distillation == 1.0 and "distillation from the base model" in distilled.loss
    assert "distilled from the base model (weight 1): 100% of the train pairs" in distilled.summary()
    assert all("distillation" in entry for entry in read_jsonl(generated.root / "train_log.jsonl") if "loss" in entry)
    assert read_json(distilled.model_dir / "domainfit_training.json")["base_distillation"] == 1.0
    assert own.base_distillation == 0.0 and "distillation" not in own.loss
    assert "not distilled from the base model: 0% of the train pairs" in own.summary()
