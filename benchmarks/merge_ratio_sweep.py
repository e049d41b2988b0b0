"""Each WiSE-FT ratio on one trained Cranfield run: its val-split score and its NDCG@10 on the human queries.

``train.base_merge_ratio = "auto"`` keeps the ratio the val split likes best; this
shows, for a run of ``bench_adapt.py``, what each ratio of ``train.merge_ratio_grid``
scores on the val split (as "auto" computes it) and on Cranfield's human-written
queries, from the checkpoint training kept (add ``keep_checkpoints = true`` under
``[train]`` in ``OUT/adapt.toml`` and train again)::

    domainfit train OUT/in_corpus --config OUT/adapt.toml
    .venv/bin/python benchmarks/merge_ratio_sweep.py OUT/in_corpus --cranfield OUT/cranfield --config OUT/adapt.toml
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from cranfield_data import write_cranfield  # noqa: E402
from cranfield_score import DIMS, CranfieldScorer  # noqa: E402


def best_checkpoint(folder: Path) -> Path:
    """The checkpoint the trainer kept as best (its last checkpoint's ``trainer_state.json`` names it)."""
    checkpoints = sorted(folder.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))
    if not checkpoints:
        raise SystemExit(f"no checkpoints in {folder}: train with keep_checkpoints = true under [train]")
    state = json.loads((checkpoints[-1] / "trainer_state.json").read_text(encoding="utf-8"))
    return folder / Path(state.get("best_model_checkpoint") or checkpoints[-1]).name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--cranfield", type=Path, required=True, help="the folder bench_adapt.py wrote (OUT/cranfield)")
    parser.add_argument("--checkpoints", type=Path, default=None, help="default: RUN/checkpoints")
    parser.add_argument("--sets", default="dev,test,all", help="query sets: dev, test, all, unseen")
    parser.add_argument("--config", type=Path, default=None, help="the run's TOML config")
    args = parser.parse_args(argv)

    from domainfit.artifacts import RunDir
    from domainfit.config import load_config
    from domainfit.models import embedding_dim, load_model, resolve_matryoshka_dims
    from domainfit.splits import read_splits
    from domainfit.train.args import validation_metric
    from domainfit.train.inputs import load_training_inputs
    from domainfit.train.merge import choose_merge_ratio
    from domainfit.train.validation import build_evaluator

    run = RunDir(args.run)
    config = load_config(args.config, environ={})
    checkpoint = best_checkpoint(args.checkpoints or run.checkpoints_dir)
    model = load_model(str(checkpoint), device="cpu")
    base = load_model(config.base_model, device="cpu").state_dict()
    model_dim = embedding_dim(model)
    dims = resolve_matryoshka_dims(model_dim, config.train.matryoshka_dims)
    inputs = load_training_inputs(run, read_splits(run), config.train)
    evaluator = build_evaluator(inputs.val, dims, model_dim, batch_size=config.eval.batch_size)
    metric = validation_metric(config.train.metric_for_best_model, dims, model_dim, "cosine").removeprefix("eval_")
    scorer = CranfieldScorer(write_cranfield(args.cranfield).beir)
    sets = args.sets.split(",")
    base_scores = scorer.dense(config.base_model)
    print(f"checkpoint {checkpoint.name}; val metric {metric} ({len(inputs.val.queries)} val questions)")
    print(f"{'ratio':<7}{'val':>8}  {'set':<7}" + "".join(f"{dim:>9}" for dim in DIMS) + "   minus base")
    results = {}

    def score(merged, ratio: float) -> float:
        """The val score "auto" rates the ratio by, and (recorded beside it) the ratio's human-query scores."""
        val = float(evaluator(merged)[metric])
        folder = args.run / "merge_sweep" / f"ratio_{ratio:g}"
        merged.save(str(folder))
        scores = scorer.dense(str(folder))
        results[f"{ratio:g}"] = {"val": val, **{name: {dim: scores[name][dim]["ndcg@10"] for dim in DIMS} for name in sets}}
        for name in sets:
            row = [scores[name][dim]["ndcg@10"] for dim in DIMS]
            gain = [value - base_scores[name][dim]["ndcg@10"] for value, dim in zip(row, DIMS)]
            print(f"{ratio:<7g}{val:>8.4f}  {name:<7}" + "".join(f"{value:>9.4f}" for value in row)
                  + "  " + "".join(f"{value:>+9.4f}" for value in gain), flush=True)
        return val

    chosen, _ = choose_merge_ratio(model, base, config.train.merge_ratio_grid, score)
    print(f'base_merge_ratio = "auto" keeps {chosen:g}')
    (args.run / "merge_sweep" / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
