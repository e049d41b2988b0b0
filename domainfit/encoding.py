"""Texts -> vectors, the one way mine, eval, rerank and export encode.

:func:`encode` returns a float32 array, one row per text, at the model's output size
(its ``truncate_dim`` when set), with the model's query or document prompt. Rows are
unit-normalised by default (cosine scores are dot products); ``normalize=False`` gives
the raw vectors (eval truncates and renormalises per Matryoshka dim itself, and a
``dot`` model must not be normalised).

With ``[encode]`` asking for it (``processes = N`` or ``devices = [...]``) a call of at
least ``encode.pool_min_texts`` texts runs in sentence-transformers' multi-process pool
(``start_multi_process_pool`` / ``encode(pool=...)``); smaller calls stay in this
process, because starting a pool costs seconds (each worker imports torch and
receives the model). The vectors equal the in-process ones to float rounding.

Example::

    vectors = encode(model, ["How long is a pass valid?"], kind="query")
    with Encoder(model, kind="document", settings=EncodeConfig(processes=2)) as encoder:
        for batch in batches:                  # one pool for every batch
            index.add(encoder(batch))
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Literal, Sequence

import numpy as np

from .config import EncodeConfig

if TYPE_CHECKING:  # pragma: no cover
    from sentence_transformers import SentenceTransformer

Kind = Literal["query", "document"]

PROGRESS_FROM = 1000
"""Texts from which a call shows a progress bar when ``progress`` is left unset."""


def unit_rows(vectors: Any) -> np.ndarray:
    """Rows scaled to unit length, as float32 (a zero row stays zero): cosine scores become dot products."""
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    return array / np.where(norms == 0, 1, norms)


class Encoder:
    """A reusable ``texts -> vectors`` function that keeps one pool for its whole life.

    The pool starts on the first call large enough to pay for it and stops on
    :meth:`close` (or leaving the ``with`` block); the model is put back on its device.
    """

    def __init__(
        self,
        model: "SentenceTransformer",
        *,
        kind: Kind,
        batch_size: int = 32,
        normalize: bool = True,
        settings: EncodeConfig | None = None,
        progress: bool | None = None,
    ) -> None:
        self.model = model
        self.kind = kind
        self.batch_size = batch_size
        self.normalize = normalize
        self.settings = settings or EncodeConfig()
        self.progress = progress
        self._pool: dict[str, Any] | None = None
        self._home_device: Any = None

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            from .models import embedding_dim

            return np.zeros((0, embedding_dim(self.model)), dtype=np.float32)
        if self._pool is None and self._pool_pays(len(texts)):
            self._start_pool()
        method = self.model.encode_query if self.kind == "query" else self.model.encode_document
        progress = len(texts) >= PROGRESS_FROM if self.progress is None else self.progress
        extra: dict[str, Any] = {} if self._pool is None else {"pool": self._pool}
        vectors = method(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=self.normalize,
            convert_to_numpy=True,
            show_progress_bar=progress,
            **extra,
        )
        return np.asarray(vectors, dtype=np.float32)

    @property
    def pooled(self) -> bool:
        """Whether a pool is running (calls go to its workers)."""
        return self._pool is not None

    def close(self) -> None:
        """Stop the pool, if one started, and move the model back to its device."""
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        self.model.stop_multi_process_pool(pool)
        if self._home_device is not None and str(self.model.device) != str(self._home_device):
            self.model.to(self._home_device)

    def __enter__(self) -> "Encoder":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _pool_pays(self, n_texts: int) -> bool:
        return bool(self.settings.pool_devices) and n_texts >= self.settings.pool_min_texts

    def _start_pool(self) -> None:
        devices = self.settings.pool_devices
        self._home_device = self.model.device  # the pool moves the model to the CPU to share it
        with _threads_per_cpu_worker(devices.count("cpu")):
            self._pool = self.model.start_multi_process_pool(target_devices=devices)


def encode(
    model: "SentenceTransformer",
    texts: Sequence[str],
    *,
    kind: Kind,
    batch_size: int = 32,
    normalize: bool = True,
    settings: EncodeConfig | None = None,
    progress: bool | None = None,
) -> np.ndarray:
    """``texts`` as float32 vectors (one row each), unit length unless ``normalize=False``.

    ``kind`` picks the model's query or document prompt. ``settings`` (``config.encode``)
    may run the call in a multi-process pool; the pool is stopped before returning. A
    progress bar shows from ``PROGRESS_FROM`` texts unless ``progress`` says otherwise.

    Example::

        chunks = encode(model, [c.text for c in chunks], kind="document", batch_size=64,
                        settings=config.encode)
    """
    with Encoder(model, kind=kind, batch_size=batch_size, normalize=normalize, settings=settings,
                 progress=progress) as encoder:
        return encoder(texts)


@contextmanager
def _threads_per_cpu_worker(cpu_workers: int) -> Iterator[None]:
    """Give each CPU worker its share of the cores, so N workers do not each use them all.

    Workers are spawned processes that read ``OMP_NUM_THREADS`` when torch loads; a
    value the user set is left alone.
    """
    if cpu_workers == 0 or "OMP_NUM_THREADS" in os.environ:
        yield
        return
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // cpu_workers))
    try:
        yield
    finally:
        del os.environ["OMP_NUM_THREADS"]
