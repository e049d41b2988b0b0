"""What training shows on the terminal: one progress bar, one line per validation.

Hugging Face's trainer prints every log entry as a raw dict (some 40 metrics per
validation) between its progress bars. :class:`ReadableProgress` replaces its
printing: a single ``train`` bar with the loss, one line per validation with the
main metric at every Matryoshka dim, and every log entry, in full, appended to
``RUN/logs/train.log`` (one JSON object per line).

Example::

    validation_line({"eval_dim_384_cosine_ndcg@10": 0.61, "eval_dim_64_cosine_ndcg@10": 0.52, "epoch": 1.0},
                    step=40, metric="ndcg@10", similarity="cosine")
    # 'validation at step 40 (epoch 1.00): ndcg@10  384: 0.6100  64: 0.5200'
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from pathlib import Path
from typing import Any, Mapping

from transformers import TrainerCallback

_DIM_KEY = re.compile(r"^eval_dim_(\d+)_(\w+?)_(.+)$")


@contextlib.contextmanager
def quiet_library_bars():
    """Hide transformers' own bars ("Loading weights", "Writing model shards") while training runs."""
    from transformers.utils import logging as transformers_logging

    was_on = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            transformers_logging.enable_progress_bar()


def main_metric_name(metric: str | None) -> str:
    """``eval_dim_128_cosine_ndcg@10`` -> ``ndcg@10``; ndcg@10 when there is no validation metric."""
    if not metric:
        return "ndcg@10"
    match = _DIM_KEY.match(metric if metric.startswith("eval_") else f"eval_{metric}")
    return match.group(3) if match else metric.removeprefix("eval_")


def validation_line(logs: Mapping[str, Any], *, step: int, metric: str, similarity: str) -> str | None:
    """One readable line for a validation log entry, largest dim first; None for any other entry."""
    by_dim: dict[int, float] = {}
    for key, value in logs.items():
        match = _DIM_KEY.match(key)
        if match and match.group(2) == similarity and match.group(3) == metric and isinstance(value, (int, float)):
            by_dim[int(match.group(1))] = float(value)
    if not by_dim:
        return None
    epoch = logs.get("epoch")
    when = f"step {step}" + (f" (epoch {epoch:.2f})" if isinstance(epoch, (int, float)) else "")
    scores = "  ".join(f"{dim}: {by_dim[dim]:.4f}" for dim in sorted(by_dim, reverse=True))
    return f"validation at {when}: {metric}  {scores}"


class ReadableProgress(TrainerCallback):
    """The trainer's terminal output, made readable; the full log goes to ``log_path``."""

    def __init__(self, log_path: Path, *, metric: str, similarity: str, progress: bool = True):
        self.log_path = Path(log_path)
        self.metric = metric
        self.similarity = similarity
        self.progress = progress
        self.bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="train", unit="step", dynamic_ncols=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        with self.log_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": state.global_step, **logs}, default=str) + "\n")
        if self.bar is not None and "loss" in logs:
            self.bar.set_postfix(loss=f"{logs['loss']:.4f}", refresh=False)
        line = validation_line(logs, step=state.global_step, metric=self.metric, similarity=self.similarity)
        if line is None:
            return
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
