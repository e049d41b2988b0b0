"""Which models an evaluation compares, and loading them once.

``base`` (the config's base model), ``finetuned`` (a run's ``model/``), each
``--model LABEL=PATH`` (or ``PATH``, labelled by its folder name; ``minilm`` is
``base``), and ``bm25``. A model is identified by its weights' fingerprint, so its
results can be reused and it is loaded once per process.

Example::

    specs = candidate_models(config, ["ft=runs/demo/model"])
    [spec.label for spec in specs]      # ['base', 'ft', 'bm25']
    model = load_dense("minilm")
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..config import RunConfig
from ..errors import EvaluationError, ModelNotFoundError, first_line
from ..models import ALIASES, model_fingerprint, resolve_matryoshka_dims
from . import render

_LABEL = re.compile(r"^[A-Za-z0-9_.+-]+$")


@dataclass(frozen=True)
class ModelSpec:
    """A model to evaluate: its label in the reports and where it comes from (``bm25`` = the baseline)."""

    label: str
    location: str

    @property
    def is_bm25(self) -> bool:
        return self.location == render.BM25


def parse_model(text: str) -> ModelSpec:
    """``LABEL=PATH`` or ``PATH`` (label = folder name); ``minilm`` is labelled ``base``, ``bm25`` is BM25."""
    text = text.strip()
    label, sep, location = text.partition("=")
    if sep and _LABEL.match(label.strip()):
        label, location = label.strip(), location.strip()
    else:
        location = text
        if location.lower() in ALIASES:
            label = render.BASE
        elif location.lower() == render.BM25:
            label = render.BM25
        else:
            label = Path(location.rstrip("/\\")).name or location
    if not location:
        raise EvaluationError(f"--model {text!r}: no path after '='")
    if label == render.META or not _LABEL.match(label):
        raise EvaluationError(f"--model {text!r}: label {label!r} is reserved or has odd characters; use LABEL=PATH")
    return ModelSpec(label, location)


def candidate_models(
    config: RunConfig, extra: Sequence[str] = (), *, finetuned: Path | None = None
) -> list[ModelSpec]:
    """base, fine-tuned (if given), each ``extra`` spec, then BM25 when ``eval.bm25`` is on.

    An extra spec labelled ``base`` replaces ``config.base_model``; two different
    models with one label are an error.
    """
    specs = {render.BASE: ModelSpec(render.BASE, config.base_model)}
    if finetuned is not None:
        specs["finetuned"] = ModelSpec("finetuned", str(finetuned))
    for text in extra:
        spec = parse_model(text)
        known = specs.get(spec.label)
        if known is not None and known.location != spec.location and spec.label != render.BASE:
            raise EvaluationError(f"two models are labelled {spec.label!r}: {known.location} and {spec.location}")
        specs[spec.label] = spec
    if config.eval.bm25:
        specs.setdefault(render.BM25, ModelSpec(render.BM25, render.BM25))
    return list(specs.values())


def matryoshka_dims(config: RunConfig, model_dim: int) -> list[int]:
    """eval.dims, else train.matryoshka_dims, else the training default for the model's dim.

    The default is the train stage's (model dim, then powers of two down to 64:
    384 -> 384, 256, 128, 64). Dims above the model's own are dropped (a smaller model
    compared with a larger one).
    """
    wanted = config.eval.dims or config.train.matryoshka_dims or resolve_matryoshka_dims(model_dim, None)
    fitting = sorted({dim for dim in wanted if dim <= model_dim}, reverse=True)
    if not fitting:
        raise EvaluationError(f"none of the dims {sorted(wanted)} fits the model's {model_dim} dims: set eval.dims")
    return fitting


def load_dense(name: str, *, allow_downloads: bool = False):
    """A SentenceTransformer for ``name``, loaded once per process while its weights are unchanged.

    Raises :class:`ModelNotFoundError` (one line, naming the folder) for a model that
    is missing or cannot load.
    """
    from ..models import resolve

    location = resolve(name, allow_downloads=allow_downloads)
    return _load_cached(str(location), model_fingerprint(location), allow_downloads)


@functools.lru_cache(maxsize=2)
def _load_cached(location: str, fingerprint: str, allow_downloads: bool):
    from ..models import load_model

    try:
        return load_model(location, allow_downloads=allow_downloads)
    except ModelNotFoundError:
        raise
    except Exception as error:  # a half-written or foreign folder: say which one, in one line
        raise ModelNotFoundError(f"cannot load model {location}: {type(error).__name__}: {first_line(error, 200)}") from None


def model_weights_fingerprint(spec: ModelSpec, allow_downloads: bool = False) -> str:
    """The fingerprint results are reused by: the weights' bytes (a fine-tuned copy has its
    base's file sizes, so only the contents tell them apart), or BM25's settings."""
    from ..models import resolve

    if spec.is_bm25:
        from .bm25 import BM25Retriever

        return BM25Retriever.fingerprint()
    return model_fingerprint(resolve(spec.location, allow_downloads=allow_downloads))
