"""evaluate: retrieval metrics at every Matryoshka dim, on the run's test split.

``run_evaluation`` scores a run's held-out queries against all of its chunks;
``evaluate_beir`` scores a BEIR folder. Both write ``eval/metrics.json``,
``eval/report.md`` and PNG plots, with base, fine-tuned and BM25 side by side.
Names resolve lazily, so importing one of them does not load torch for the others.

Example::

    from domainfit.evaluate import run_evaluation
    result = run_evaluation(RunDir("runs/demo"), load_config())
    print(result.summary())
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "run_evaluation": ".stage",
    "evaluate_beir": ".stage",
    "EvalResult": ".stage",
    "evaluate_task": ".engine",
    "evaluate_dense": ".engine",
    "RetrievalTask": ".task",
    "task_from_pairs": ".task",
    "MetricSpec": ".metrics",
    "markdown_table": ".render",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'domainfit.evaluate' has no attribute {name!r}")
    return getattr(importlib.import_module(module_name, __name__), name)
