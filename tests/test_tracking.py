"""Experiment tracking: train.report_to reaches the trainer, and eval adds its metrics to the same run.

TensorBoard is the offline tracker under test: real event files, read back with
TensorBoard's own reader.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from domainfit.config import load_config
from domainfit.errors import ConfigError
from domainfit.tracking import check_tracker, flat_metrics, tensorboard_dir
from train_support import build_tiny_model


def _scalars(folder: Path) -> dict[str, list[float]]:
    """Every scalar tag in every event file under ``folder``, with its values."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found: dict[str, list[float]] = {}
    for events in sorted(folder.rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            found.setdefault(tag, []).extend(event.value for event in accumulator.Scalars(tag))
    return found


def test_flat_metrics_names_each_number_by_its_path():
    nested = {"finetuned": {"128": {"ndcg@10": 0.7, "mrr@10": 0.6}}, "bm25": {"full": {"ndcg@10": 0.5}}, "note": "x"}
    assert flat_metrics(nested, "eval") == {
        "eval/finetuned/128/ndcg@10": 0.7,
        "eval/finetuned/128/mrr@10": 0.6,
        "eval/bm25/full/ndcg@10": 0.5,
    }


@pytest.mark.parametrize("tracker", ["mlflow", "wandb", "trackio"])
def test_a_tracker_that_is_not_installed_fails_in_one_line(tracker):
    if importlib.util.find_spec(tracker) is not None:
        pytest.skip(f"{tracker} is installed here")
    with pytest.raises(ConfigError, match=f"train.report_to = '{tracker}' needs the {tracker} package: pip install"):
        check_tracker(tracker)


def test_report_to_rejects_an_unknown_tracker():
    with pytest.raises(ConfigError, match="train.report_to"):
        load_config(overrides={"train.report_to": "excel"}, environ={})


@pytest.mark.slow
def test_tensorboard_holds_the_training_curve_and_the_eval_metrics(tiny_run, tmp_path):
    import torch

    from domainfit.evaluate import run_evaluation
    from domainfit.train import run_training

    torch.set_num_threads(1)
    model = build_tiny_model(tmp_path / "tiny")
    config = load_config(
        overrides={
            "base_model": str(model),
            "train.report_to": "tensorboard",
            "train.loss": "mnrl",
            "train.epochs": 1,
            "train.logging_steps": 1,
            "eval.bm25": False,
        },
        environ={},
    )
    run_training(tiny_run, config, progress=False)
    result = run_evaluation(tiny_run, config)

    scalars = _scalars(tensorboard_dir(tiny_run))
    assert scalars["train/loss"], scalars.keys()
    assert scalars["eval/dim_128_cosine_ndcg@10"]  # validation during training, same folder
    expected = result.metrics["finetuned"]["128"]["ndcg@10"]
    assert scalars["eval/finetuned/128/ndcg@10"] == [pytest.approx(expected)]
    assert scalars["eval/base/64/ndcg@10"] == [pytest.approx(result.metrics["base"]["64"]["ndcg@10"])]
    assert not tiny_run.checkpoints_dir.exists()  # the curves outlive the checkpoints
