"""Vectors keyed by model and text, shared by mining, evaluation, re-ranking and export.

A :class:`VectorCache` is a LanceDB folder. Each encoder (model fingerprint + token
cap) has its own table; a row is one text's vector at the model's full dim, keyed by
``content_hash(kind, text)``. ``kind`` (``query`` or ``document``) stands for the
prompt: the prompts themselves are in the model's config files, which the fingerprint
hashes. The text is hashed exactly as given: lower-casing or collapsing whitespace
would give a cased model another text's vector. Matryoshka dims are slices of the
stored rows (:func:`domainfit.evaluate.retrieval.truncate`).

Validity is per row: every row carries the fingerprint of the weights that made it and
a lookup only takes rows with the current one, so a retrained model (new weights, same
file sizes) gets new rows and never a stale one.

Concurrency: LanceDB commits each append atomically and retries an append that races
another, so two processes writing one cache both land their rows and a reader sees
whole versions only. Two processes that miss the same text both encode it; the
duplicate rows hold the same vector and a lookup takes either. A table that cannot be
read (damaged files) is moved aside and started again: it is a cache, and losing it
costs only the encoding. A cache folder that cannot be created or written is a
:class:`~domainfit.errors.CacheError` in one line.

Example::

    cache = VectorCache(run.vectors_dir)
    key = EncoderKey.of(model_path, model)
    vectors = cache.get_or_encode(key, texts, "document", lambda misses: model.encode_document(misses))
    cache.encoded, cache.reused          # texts encoded this time, texts found
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Sequence

import numpy as np

from .artifacts import content_hash
from .errors import CacheError, first_line
from .lance import sql_quote, vectors_from_arrow

if TYPE_CHECKING:  # pragma: no cover
    from sentence_transformers import SentenceTransformer

    from .artifacts import RunDir
    from .config import EncodeConfig, RunConfig

Kind = Literal["query", "document"]
EncodeFn = Callable[[list[str]], Any]
KINDS = ("query", "document")
_TAKE_BATCH = 8192

totals = {"texts_encoded": 0, "texts_reused": 0}
"""Texts encoded and found by every cache of this process (what a benchmark of a whole pipeline counts)."""


@dataclass(frozen=True)
class EncoderKey:
    """What a vector depends on besides its text: the weights (and config files) and the token cap."""

    fingerprint: str
    max_seq_length: int | None

    @property
    def table(self) -> str:
        return f"m_{self.fingerprint}_{self.max_seq_length or 'default'}"

    @classmethod
    def of(cls, location: str | Path, model: "SentenceTransformer | None" = None) -> "EncoderKey":
        """The key of the model at ``location``: from the loaded ``model`` if given, else from its files.

        Without a loaded model the token cap is read from ``sentence_bert_config.json``,
        as sentence-transformers reads it, so a full cache hit never loads the model.
        """
        from .models import model_fingerprint

        fingerprint = model_fingerprint(location)
        if model is not None:
            return cls(fingerprint, getattr(model, "max_seq_length", None))
        return cls(fingerprint, model_file_settings(location).get("max_seq_length"))


def model_file_settings(location: str | Path) -> dict[str, Any]:
    """``max_seq_length`` and ``similarity_fn_name`` as a sentence-transformers folder states them ({} if not)."""
    root = Path(location)
    settings: dict[str, Any] = {}
    for name, keys in (("sentence_bert_config.json", ("max_seq_length",)),
                       ("config_sentence_transformers.json", ("similarity_fn_name",))):
        try:
            data = json.loads((root / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        settings.update({key: data[key] for key in keys if data.get(key) is not None})
    return settings


def _schema(dim: int):
    import pyarrow as pa

    return pa.schema([
        ("key", pa.string()),
        ("kind", pa.string()),
        ("model", pa.string()),
        ("max_seq_length", pa.int64()),
        ("created", pa.float64()),
        ("encode_ms", pa.float64()),
        ("vector", pa.list_(pa.float32(), dim)),
    ])


def text_key(kind: str, text: str) -> str:
    """The row key of ``text`` encoded as ``kind``."""
    return content_hash(kind, text, length=32)


@dataclass
class VectorCache:
    """Full-dim vectors in a LanceDB folder (see the module doc); ``root=None`` keeps nothing.

    ``encoded`` and ``reused`` count texts over this object's lifetime, ``rebuilt``
    names the tables that were damaged and started again. ``last_ms_per_text`` is the
    encoding time per text of the last call's texts as measured when they were encoded
    (a hit keeps its original cost, so a latency report stays true).
    """

    root: Path | None
    encoded: int = 0
    reused: int = 0
    last_ms_per_text: float = 0.0
    rebuilt: list[str] = field(default_factory=list)
    _db: Any = field(default=None, repr=False)

    @classmethod
    def disabled(cls) -> "VectorCache":
        """A cache that stores nothing: every text is encoded (``--no-cache``), and still counted."""
        return cls(None)

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def counts(self) -> dict[str, int]:
        return {"texts_encoded": self.encoded, "texts_reused": self.reused}

    # ------------------------------------------------------------------ lookup and store

    def get_or_encode(self, key: EncoderKey, texts: Sequence[str], kind: Kind, encode: EncodeFn) -> np.ndarray:
        """Float32 rows at the model's full dim, one per text in input order; only misses are encoded.

        ``encode`` gets the distinct missing texts in one call and returns one vector
        each (numpy or torch); its rows are written to the cache in one append.

        Example::

            vectors = cache.get_or_encode(key, ["a", "b", "a"], "query", encode)   # encodes ["a", "b"] at most
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        texts = list(texts)
        keys = [text_key(kind, text) for text in texts]
        distinct = dict(zip(keys, texts))
        found = self._lookup(key, list(distinct)) if self.enabled and distinct else {}
        missing = [row_key for row_key in distinct if row_key not in found]
        if missing:
            started = time.perf_counter()
            vectors = _as_float32(encode([distinct[row_key] for row_key in missing]), len(missing))
            ms = (time.perf_counter() - started) * 1000 / len(missing)
            if self.enabled:
                self._store(key, kind, missing, vectors, ms)
            found.update((row_key, (vector, ms)) for row_key, vector in zip(missing, vectors))
        self.encoded += len(missing)
        self.reused += len(distinct) - len(missing)
        totals["texts_encoded"] += len(missing)
        totals["texts_reused"] += len(distinct) - len(missing)
        self.last_ms_per_text = float(np.mean([found[row_key][1] for row_key in distinct])) if distinct else 0.0
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([found[row_key][0] for row_key in keys]).astype(np.float32, copy=False)

    def _connect(self):
        if self._db is None:
            import lancedb

            try:
                self.root.mkdir(parents=True, exist_ok=True)
                probe = self.root / f".write-probe-{os.getpid()}"
                probe.write_bytes(b"")
                probe.unlink()
            except OSError as error:
                raise CacheError(
                    f"vector cache {self.root} cannot be written ({first_line(error)}): "
                    "pass another --cache DIR, or --no-cache"
                ) from None
            self._db = lancedb.connect(str(self.root))
        return self._db

    def _open(self, key: EncoderKey):
        db = self._connect()
        try:
            return db.open_table(key.table)
        except ValueError:  # lancedb says "Table ... was not found"
            return None

    def _lookup(self, key: EncoderKey, row_keys: list[str]) -> dict[str, tuple[np.ndarray, float]]:
        try:
            table = self._open(key)
            if table is None:
                return {}
            return _read_rows(table, key, set(row_keys))
        except CacheError:
            raise
        except Exception as error:  # damaged table files: a cache may be rebuilt, never trusted half-read
            self._set_aside(key, error)
            return {}

    def _store(self, key: EncoderKey, kind: str, row_keys: list[str], vectors: np.ndarray, ms: float) -> None:
        import pyarrow as pa

        dim = vectors.shape[1]
        schema = _schema(dim)
        rows = pa.table({
            "key": row_keys,
            "kind": [kind] * len(row_keys),
            "model": [key.fingerprint] * len(row_keys),
            "max_seq_length": [key.max_seq_length] * len(row_keys),
            "created": [time.time()] * len(row_keys),
            "encode_ms": [ms] * len(row_keys),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(vectors).reshape(-1)), dim),
        }, schema=schema)
        db = self._connect()
        table = self._open(key)
        if table is None:
            try:
                table = db.create_table(key.table, schema=schema, exist_ok=True)
            except Exception as error:  # another process created it meanwhile
                table = self._open(key)
                if table is None:
                    raise CacheError(f"vector cache {self.root}: cannot create table {key.table}: {first_line(error)}") from None
        stored_dim = table.schema.field("vector").type.list_size
        if stored_dim != dim:
            raise CacheError(
                f"vector cache {self.root}: table {key.table} holds {stored_dim}-dim vectors, the encoder gave {dim}"
            )
        table.add(rows)

    def _set_aside(self, key: EncoderKey, error: Exception) -> None:
        """Move a damaged table out of the way (kept for inspection) so it is built again."""
        source = self.root / f"{key.table}.lance"
        target = self.root / f"{key.table}.damaged-{int(time.time())}-{os.getpid()}"
        if source.exists():
            shutil.move(str(source), str(target))
        self.rebuilt.append(f"{key.table} ({type(error).__name__}: {first_line(error, 120)})")
        self._db = None

    def stored_dim(self, key: EncoderKey) -> int | None:
        """The vector size of ``key``'s table, or None when the cache holds nothing for it."""
        if not self.enabled:
            return None
        try:
            table = self._open(key)
            return None if table is None else int(table.schema.field("vector").type.list_size)
        except CacheError:
            raise
        except Exception:
            return None


class ModelVectors:
    """One model's full-dim vectors through a cache; the model is loaded on the first miss only.

    ``location`` is the model folder (what the fingerprint hashes); ``model`` an already
    loaded copy of it, or ``load`` a function that loads it when a text must be encoded.
    Vectors are the model's raw output (not renormalised): callers slice and normalise.

    Example::

        vectors = ModelVectors(cache, path, load=lambda: load_model(path))
        corpus = vectors.encode(texts, "document")      # (n, model dim) float32
        vectors.model_loaded                            # False when every text was cached
    """

    def __init__(self, cache: VectorCache, location: str | Path | None = None, *,
                 model: "SentenceTransformer | None" = None, load: Callable[[], "SentenceTransformer"] | None = None,
                 batch_size: int = 32, settings: "EncodeConfig | None" = None,
                 query_settings: "EncodeConfig | None" = None, progress: bool | None = None):
        if model is None and load is None:
            raise ValueError("ModelVectors needs a model or a way to load one")
        if location is None and cache.enabled:
            raise ValueError("a cached ModelVectors needs the model's location")
        self.cache, self.location, self._model, self._load = cache, location, model, load
        self.batch_size, self.progress = batch_size, progress
        self._settings = {"document": settings, "query": query_settings}
        self._encoders: dict[str, Any] = {}
        self._key: EncoderKey | None = None

    def __enter__(self) -> "ModelVectors":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the encoding pools that were started (see :class:`domainfit.encoding.Encoder`)."""
        for encoder in self._encoders.values():
            encoder.close()
        self._encoders.clear()

    @property
    def model(self) -> "SentenceTransformer":
        if self._model is None:
            self._model = self._load()
        return self._model

    @property
    def model_loaded(self) -> bool:
        return self._model is not None

    @property
    def key(self) -> EncoderKey:
        if self._key is None:
            if self._model is None and model_file_settings(self.location).get("max_seq_length") is None:
                self.model  # the files do not say the token cap: only the loaded model knows it
            self._key = EncoderKey.of(self.location, self._model)
        return self._key

    @property
    def similarity(self) -> str:
        """The model's similarity function name (``cosine`` unless it says otherwise)."""
        if self._model is not None:
            return str(getattr(self._model, "similarity_fn_name", None) or "cosine")
        return str(model_file_settings(self.location).get("similarity_fn_name") or "cosine")

    @property
    def dim(self) -> int:
        """The model's full output size: from the cache's table when it has one, else the model."""
        from .models import embedding_dim

        if self._model is None and self.cache.enabled:
            stored = self.cache.stored_dim(self.key)
            if stored is not None:
                return stored
        return embedding_dim(self.model)

    def encode(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        """Full-dim float32 vectors of ``texts`` (input order), encoding only what the cache lacks."""
        key = self.key if self.cache.enabled else EncoderKey("uncached", None)
        return self.cache.get_or_encode(key, texts, kind, lambda misses: self._encode_misses(misses, kind))

    def _encode_misses(self, texts: list[str], kind: Kind) -> np.ndarray:
        """Raw full-dim vectors by :mod:`domainfit.encoding`; documents (and queries, if asked) may use a pool.

        One :class:`~domainfit.encoding.Encoder` per kind lives as long as this object,
        so a pool starts once for many calls. Queries stay in this process by default:
        their time is the per-query latency eval and rerank report.
        """
        from .encoding import Encoder

        model = self.model
        if getattr(model, "truncate_dim", None):
            raise ValueError("the vector cache stores full-dim vectors: encode with truncate_dim unset")
        encoder = self._encoders.get(kind)
        if encoder is None:
            encoder = self._encoders[kind] = Encoder(model, kind=kind, batch_size=self.batch_size, normalize=False,
                                                     settings=self._settings[kind], progress=self.progress)
        return encoder(texts)


def _read_rows(table, key: EncoderKey, wanted: set[str]) -> dict[str, tuple[np.ndarray, float]]:
    """The stored vectors of ``wanted`` keys made by ``key``'s model: one scan of the keys, one take."""
    stored = (
        table.search()
        .where(f"model = {sql_quote(key.fingerprint)}")
        .select(["key"])
        .with_row_id(True)
        .limit(None)
        .to_arrow()
    )
    row_ids: dict[str, int] = {}
    for row_key, row_id in zip(stored["key"].to_pylist(), stored["_rowid"].to_pylist()):
        if row_key in wanted:
            row_ids.setdefault(row_key, row_id)
    found: dict[str, tuple[np.ndarray, float]] = {}
    ids = list(row_ids.values())
    dim = table.schema.field("vector").type.list_size
    for start in range(0, len(ids), _TAKE_BATCH):
        rows = table.take_row_ids(ids[start : start + _TAKE_BATCH]).select(["key", "encode_ms", "vector"]).to_arrow()
        vectors = vectors_from_arrow(rows["vector"], dim)
        found.update(zip(rows["key"].to_pylist(), zip(vectors, rows["encode_ms"].to_pylist())))
    return found


def _as_float32(vectors: Any, rows: int) -> np.ndarray:
    if hasattr(vectors, "detach"):
        vectors = vectors.detach().cpu().numpy()
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] != rows:
        raise ValueError(f"the encoder returned shape {array.shape} for {rows} texts")
    return array


def default_cache_dir() -> Path:
    """``$DOMAINFIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/domainfit/vectors``, else ``~/.cache/domainfit/vectors``."""
    explicit = os.environ.get("DOMAINFIT_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "domainfit" / "vectors"


def run_cache(run: "RunDir", config: "RunConfig") -> VectorCache:
    """The run's cache, ``RUN/vectors``, shared by its stages (one that keeps nothing when ``vector_cache = false``)."""
    return VectorCache(run.vectors_dir) if config.vector_cache else VectorCache.disabled()
