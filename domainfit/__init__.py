"""domainfit: adapt an embedding model to your own documents.

The public API, re-exported lazily so that ``import domainfit`` (and the CLI's
``--help``) stays fast; torch and friends load when a stage first runs.

Example::

    import domainfit
    cfg = domainfit.load_config("run.toml")
    result = domainfit.run_pipeline("docs/", domainfit.RunDir("runs/x"), cfg)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what IDEs and type checkers see; at run time the names below load lazily
    from . import models
    from .artifacts import Chunk, Pair, RunDir
    from .config import (
        EvalConfig,
        ExportConfig,
        LLMConfig,
        MiningConfig,
        ReviewConfig,
        RunConfig,
        SplitConfig,
        SynthConfig,
        TrainConfig,
        load_config,
    )
    from .errors import DomainfitError
    from .evaluate import evaluate_beir, run_evaluation
    from .export import run_export
    from .mining import run_mining
    from .pipeline import run_pipeline
    from .review import human_pairs, reviewed_pairs, run_review, write_human_pair
    from .splits import make_splits
    from .synth import run_synth
    from .train import run_training

__version__ = "0.1.0"

_EXPORTS = {
    # config and artifacts
    "RunConfig": ".config",
    "LLMConfig": ".config",
    "SynthConfig": ".config",
    "SplitConfig": ".config",
    "MiningConfig": ".config",
    "TrainConfig": ".config",
    "EvalConfig": ".config",
    "ReviewConfig": ".config",
    "load_config": ".config",
    "RunDir": ".artifacts",
    "Chunk": ".artifacts",
    "Pair": ".artifacts",
    "DomainfitError": ".errors",
    # stages
    "run_synth": ".synth",
    "run_mining": ".mining",
    "run_training": ".train",
    "run_evaluation": ".evaluate",
    "evaluate_beir": ".evaluate",
    "run_export": ".export",
    "run_rerank": ".rerank",
    "RerankConfig": ".config",
    "ExportConfig": ".config",
    "make_splits": ".splits",
    "reviewed_pairs": ".review",
    "human_pairs": ".review",
    "write_human_pair": ".review",
    "run_review": ".review",
    "run_pipeline": ".pipeline",
    # submodules
    "models": ".models",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'domainfit' has no attribute {name!r}")
    module = importlib.import_module(module_name, __name__)
    return module if name == "models" else getattr(module, name)
