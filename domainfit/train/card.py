"""The domainfit section of the model card (``RUN/model/README.md``).

sentence-transformers writes a card with the architecture, the training arguments
and, when it saw them, the evaluation tables. Offline it cannot name a local base
model, and it does not know the split or the mined negatives; this section states
base model, data sizes, loss, dims and the validation metrics in one place.

Example::

    section = card_section(info)          # markdown text
    append_card_section(model_dir / "README.md", section)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..artifacts import write_text
from ..markdown import pipe_table

SECTION_TITLE = "## Trained with domainfit"


def card_section(info: Mapping[str, Any]) -> str:
    """Markdown for the card from a :class:`~domainfit.train.TrainResult`-like mapping.

    Keys used: base_model, loss, dims, counts (train/val/corpus sizes), batch_size,
    learning_rate, epochs, steps, precision, world_size, best_metric, val_metrics
    ({dim: {metric: value}}).

    Example::

        card_section({"base_model": "minilm", "loss": "MNRL", "dims": [384], "counts": {}})
    """
    counts = info.get("counts", {})
    dims = info.get("dims") or []
    lines = [
        SECTION_TITLE,
        "",
        f"- **Base model:** {info.get('base_model')}",
        f"- **Loss:** {info.get('loss')}"
        + (" (in-batch negatives gathered across devices)" if (info.get("loss_config") or {}).get("gather_across_devices") else ""),
        f"- **Matryoshka dims:** {', '.join(str(d) for d in dims) if dims else 'off (full dim only)'}"
        + (" (load with `SentenceTransformer(path, truncate_dim=D)` for any of them)" if dims else ""),
        f"- **Training pairs:** {counts.get('train_pairs', 0)} "
        f"({counts.get('pairs_with_negatives', 0)} with mined negatives, "
        f"{counts.get('negatives_per_row', 0)} per row; {counts.get('train_rows', 0)} rows trained on)",
        f"- **Validation:** {counts.get('val_queries', 0)} questions against {counts.get('corpus_chunks', 0)} chunks "
        "(split by document/chunk, never the test split)",
        f"- **Schedule:** {info.get('epochs')} epochs, {info.get('steps')} steps, batch {info.get('batch_size')} "
        f"per device x {info.get('world_size', 1)} device(s), lr {info.get('learning_rate')}, "
        f"precision {info.get('precision')}",
    ]
    best = info.get("best_metric")
    if best:
        lines.append(f"- **Best checkpoint by:** `{best[0]}` = {best[1]:.4f}")
    val_metrics: Mapping[Any, Mapping[str, float]] = info.get("val_metrics") or {}
    if val_metrics:
        names = ["ndcg@10", "mrr@10", "accuracy@1", "recall@10"]
        rows = [[str(dim), *(f"{metrics[name]:.4f}" if name in metrics else "-" for name in names)]
                for dim, metrics in val_metrics.items()]
        lines += [
            "",
            "Validation metrics of this model (InformationRetrievalEvaluator, one per dim):",
            "",
            pipe_table(["dim", *names], rows),
        ]
    else:
        lines += ["", "No validation split was used, so the last checkpoint is the model."]
    return "\n".join(lines) + "\n"


def append_card_section(readme: Path, section: str) -> None:
    """Add (or replace) the domainfit section at the end of a model card."""
    text = readme.read_text(encoding="utf-8") if readme.exists() else "# Sentence Transformer model\n"
    if SECTION_TITLE in text:
        text = text[: text.index(SECTION_TITLE)].rstrip() + "\n"
    write_text(readme, text.rstrip() + "\n\n" + section)
