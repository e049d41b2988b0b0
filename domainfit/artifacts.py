"""Run-directory artifacts: row schemas, atomic JSONL/Parquet IO and the manifest.

Every write is atomic (temp file in the same folder, fsync, rename), so a killed run
leaves either the old file or the new one, never half of one. The one exception is
the append-only logs (``pairs.jsonl``, ``rejected.jsonl``, ``review.jsonl``): each
append is a single ``write`` of whole lines followed by fsync, and a torn last line
left by a kill is cut off by :func:`repair_jsonl_tail` before the next append.

Readers never return a silent partial read: a corrupt or truncated file raises
:class:`~domainfit.errors.ArtifactError` naming the file and line.

Example::

    run = RunDir("runs/demo")
    write_jsonl(run.pairs, [pair.model_dump() for pair in pairs])
    pairs = read_rows(run.pairs, Pair)
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Sequence, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ArtifactError, first_validation_error

Row = dict[str, Any]
ModelT = TypeVar("ModelT", bound=BaseModel)


# --------------------------------------------------------------------------- ids


def content_hash(*parts: str | bytes, length: int = 16) -> str:
    """Stable short hex id of some text (or byte) parts: the basis of every id and fingerprint in a run."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8") if isinstance(part, str) else part)
        digest.update(b"\x1f")
    return digest.hexdigest()[:length]


def json_hash(data: Any, length: int = 16) -> str:
    """Stable short hex hash of plain data (keys sorted): the key of a config or settings."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:length]


def normalize_text(text: str) -> str:
    """Lower-cased, whitespace-collapsed text: what 'the same text' means in a run."""
    return " ".join(text.lower().split())


def same_text_chunks(chunks: Sequence["Chunk"]) -> dict[str, list[str]]:
    """Chunk id -> the ids of every chunk with its normalised text, itself included, in chunk order.

    A question written for one copy of a passage is answered by every copy, so
    evaluations count each copy as relevant rather than scoring it as a miss.
    """
    copies: dict[str, list[str]] = {}
    for chunk in chunks:
        copies.setdefault(normalize_text(chunk.text), []).append(chunk.chunk_id)
    return {chunk.chunk_id: copies[normalize_text(chunk.text)] for chunk in chunks}


# --------------------------------------------------------------------------- rows


class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Chunk(_Row):
    """A span of one document, the unit that questions are written for and retrieved."""

    chunk_id: str
    doc_id: str
    source: str
    text: str
    char_start: int
    char_end: int
    n_tokens: int


class Pair(_Row):
    """A generated query and the chunk that answers it.

    ``style`` is the query style (``question``, ``claim``, ``keywords``); rows written
    before styles existed have none and read as ``question``. ``origin`` is
    ``generated`` (synth) or ``human`` (written by a person on the review page, kept
    in ``human.jsonl``: a test question only, never trained on). ``generator`` says who
    wrote the query: synth records its model and prompt (``model``, ``prompt_version``,
    ``prompt_style``); pairs from elsewhere carry their own record or none, which is
    how ``train.base_distillation = "auto"`` tells them apart.
    """

    pair_id: str
    chunk_id: str
    query: str
    evidence: str = ""
    generator: dict[str, Any] = Field(default_factory=dict)
    checks: dict[str, Any] = Field(default_factory=dict)
    style: str = "question"
    origin: Literal["generated", "human"] = "generated"


class Reject(_Row):
    """An LLM answer or question that failed a check, kept for inspection."""

    chunk_id: str
    reason: str
    raw: str = ""
    query: str | None = None
    style: str | None = None
    """The query style the chunk was asked for; None for failed answers and older rows."""
    time: str = Field(default_factory=lambda: utc_now())


class ReviewDecision(_Row):
    """One click on the review page; the latest per pair wins."""

    pair_id: str
    decision: Literal["accept", "reject", "edit", "rescue", "reset"]
    edited_query: str | None = None
    time: str = Field(default_factory=lambda: utc_now())


def pair_id_for(chunk_id: str, query: str) -> str:
    """A pair's id: stable across re-runs for the same chunk and question text."""
    return content_hash(chunk_id, normalize_text(query))


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- run dir


class RunDir:
    """The paths of one run directory (the README's "What each stage writes" lists them)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def ensure(self) -> "RunDir":
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    chunks = property(lambda self: self.root / "chunks.parquet")
    pairs = property(lambda self: self.root / "pairs.jsonl")
    rejected = property(lambda self: self.root / "rejected.jsonl")
    review = property(lambda self: self.root / "review.jsonl")
    human = property(lambda self: self.root / "human.jsonl")
    splits_dir = property(lambda self: self.root / "splits")
    index_dir = property(lambda self: self.root / "index")
    vectors_dir = property(lambda self: self.root / "vectors")
    triplets = property(lambda self: self.root / "triplets.parquet")
    model_dir = property(lambda self: self.root / "model")
    checkpoints_dir = property(lambda self: self.root / "checkpoints")
    eval_dir = property(lambda self: self.root / "eval")
    rerank_dir = property(lambda self: self.root / "rerank")
    export_dir = property(lambda self: self.root / "export")
    tracking_dir = property(lambda self: self.root / "tracking")
    manifest = property(lambda self: self.root / "manifest.json")
    report = property(lambda self: self.root / "report.md")
    synth_state = property(lambda self: self.root / "synth_done.jsonl")

    def split_file(self, name: str) -> Path:
        return self.splits_dir / f"{name}.jsonl"

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"


# --------------------------------------------------------------------------- atomic IO


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it is fsynced and renamed over it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        yield temp
        with open(temp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temp, target)
    except OSError as error:
        if _disk_full(error):  # pyarrow's IO errors carry the message but no errno
            raise ArtifactError(f"cannot write {target}: No space left on device") from None
        raise
    finally:
        temp.unlink(missing_ok=True)


def _disk_full(error: OSError) -> bool:
    return error.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left on device" in str(error)


def replace_dir(staging: Path, target: Path) -> None:
    """Rename the finished folder ``staging`` over ``target``: a reader sees the old one or the new one.

    The old folder is moved aside first and removed only once the new one is in place.
    """
    previous = None
    if target.exists():
        previous = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, previous)
    os.replace(staging, target)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)


def write_text(path: str | Path, text: str) -> Path:
    """Atomically write a text file."""
    with atomic_path(path) as temp:
        temp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, data: Any) -> Path:
    """Atomically write pretty JSON."""
    return write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file; a corrupt one names the file."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"missing artifact: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{path} is corrupt ({error}); delete it to rebuild") from None


def _dump_line(row: Row | BaseModel) -> str:
    data = row.model_dump(mode="json") if isinstance(row, BaseModel) else row
    return json.dumps(data, ensure_ascii=False, default=str) + "\n"


def write_jsonl(path: str | Path, rows: Iterable[Row | BaseModel]) -> Path:
    """Atomically (re)write a JSONL file."""
    with atomic_path(path) as temp:
        with temp.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(_dump_line(row))
    return Path(path)


_append_lock = threading.Lock()


def append_jsonl(path: str | Path, rows: Iterable[Row | BaseModel]) -> int:
    """Append rows durably: one write of whole lines, flushed and fsynced. Returns the count."""
    text = "".join(_dump_line(row) for row in rows)
    if not text:
        return 0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _append_lock, path.open("a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        if error.filename is None:  # a failed write or fsync does not say which file
            error.filename = str(path)
        raise
    return text.count("\n")


def repair_jsonl_tail(path: str | Path) -> int:
    """Cut a torn last line (a kill mid-append) off an append-only log; returns bytes dropped."""
    path = Path(path)
    if not path.exists():
        return 0
    with path.open("rb+") as handle:
        data = handle.read()
        if not data or data.endswith(b"\n"):
            return 0
        keep = data.rfind(b"\n") + 1
        handle.truncate(keep)
        return len(data) - keep


def iter_jsonl(path: str | Path) -> Iterator[Row]:
    """Yield the rows of a JSONL file; a torn or corrupt line raises ArtifactError."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise ArtifactError(f"missing artifact: {path}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ArtifactError(f"{path} line {number} is not UTF-8 text; save the file as UTF-8") from None
            if not line.strip():
                continue
            if not line.endswith("\n"):
                raise ArtifactError(
                    f"{path} is truncated at line {number} (killed mid-write?); re-run the stage that writes it"
                )
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ArtifactError(f"{path} line {number} is not valid JSON: {error.msg}") from None
            if not isinstance(row, dict):
                raise ArtifactError(f"{path} line {number} is not a JSON object")
            yield row


def read_jsonl(path: str | Path) -> list[Row]:
    """All rows of a JSONL file (see :func:`iter_jsonl`)."""
    return list(iter_jsonl(path))


def read_rows(path: str | Path, model: type[ModelT]) -> list[ModelT]:
    """Rows of a JSONL file validated as ``model``; a bad row names the file and line."""
    rows = []
    for number, row in enumerate(iter_jsonl(path), start=1):
        try:
            rows.append(model.model_validate(row))
        except ValidationError as error:
            field, problem = first_validation_error(error)
            raise ArtifactError(f"{path} row {number}: field '{field}': {problem['msg']}") from None
    return rows


def write_parquet(path: str | Path, rows: Sequence[Row | BaseModel] | Any) -> Path:
    """Atomically write rows (dicts, pydantic rows, or a pyarrow Table) as Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(rows, pa.Table):
        table = rows
    else:
        table = pa.Table.from_pylist(
            [row.model_dump(mode="json") if isinstance(row, BaseModel) else row for row in rows]
        )
    with atomic_path(path) as temp:
        pq.write_table(table, temp)
    return Path(path)


def read_parquet(path: str | Path, required_columns: Iterable[str] = ()):
    """Read a Parquet file as a pyarrow Table; corrupt files and missing columns name the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"missing artifact: {path}")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise ArtifactError(f"{path} is corrupt or truncated ({error}); re-run the stage that writes it") from None
    missing = [column for column in required_columns if column not in table.column_names]
    if missing:
        raise ArtifactError(f"{path} lacks column(s) {', '.join(missing)}")
    return table


def read_chunks(path: str | Path) -> list[Chunk]:
    """The chunks of ``chunks.parquet`` as :class:`Chunk` rows."""
    table = read_parquet(path, Chunk.model_fields)
    return [Chunk.model_validate(row) for row in table.to_pylist()]


def write_chunks(path: str | Path, chunks: Sequence[Chunk]) -> Path:
    """Write ``chunks.parquet`` with the schema of :class:`Chunk` (also when empty)."""
    import pyarrow as pa

    schema = pa.schema(
        [
            ("chunk_id", pa.string()),
            ("doc_id", pa.string()),
            ("source", pa.string()),
            ("text", pa.string()),
            ("char_start", pa.int64()),
            ("char_end", pa.int64()),
            ("n_tokens", pa.int64()),
        ]
    )
    table = pa.Table.from_pylist([chunk.model_dump() for chunk in chunks], schema=schema)
    return write_parquet(path, table)


# --------------------------------------------------------------------------- manifest


# The config sections whose values change each stage's output (base_model always
# counts): a stage records their hash, and the pipeline redoes a stage whose hash changed.
STAGE_SECTIONS: dict[str, tuple[str, ...]] = {
    "synth": ("llm", "synth"),
    "review": (),
    "split": ("split",),
    "mine": ("mining", "split"),
    "baseline": ("eval", "split"),
    "train": ("train",),
    "eval": ("eval", "split"),
    "rerank": ("rerank", "split"),
    "export": ("export",),
}


class StageRecord(BaseModel):
    """What the manifest knows about one stage of a run: ``manifest.json``'s ``stages.<name>``.

    ``config_hash`` is the hash of the stage's :data:`STAGE_SECTIONS`; ``input_hash``
    the hash of the earlier stages' outputs it read, set by the pipeline (None when
    the stage ran on its own, so the pipeline redoes it once).
    """

    status: Literal["running", "done", "failed", "skipped"] = "running"
    config_hash: str | None = None
    input_hash: str | None = None
    started: str | None = None
    finished: str | None = None
    seconds: float | None = None
    counts: dict[str, Any] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


_manifest_lock = threading.Lock()

TRACKED_PACKAGES = (
    "domainfit",
    "torch",
    "sentence-transformers",
    "transformers",
    "lancedb",
    "openai",
    "instructor",
    "pydantic",
)


def package_versions(names: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that shape a run's results."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def read_manifest(run: RunDir) -> dict[str, Any]:
    """The run's manifest, or an empty one if the run is new."""
    if not run.manifest.exists():
        return {"stages": {}}
    data = read_json(run.manifest)
    data.setdefault("stages", {})
    return data


def _change_manifest(run: RunDir, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Read ``manifest.json``, apply ``change``, stamp the time and versions, write it atomically."""
    with _manifest_lock:
        data = read_manifest(run)
        data.setdefault("created", utc_now())
        data["updated"] = utc_now()
        data["versions"] = package_versions()
        change(data)
        write_json(run.manifest, data)
        return data


def update_manifest(run: RunDir, **fields: Any) -> dict[str, Any]:
    """Merge top-level fields into ``manifest.json``."""
    return _change_manifest(run, lambda data: data.update(fields))


def stage_record(run: RunDir, stage: str) -> StageRecord | None:
    """The manifest's record of ``stage``, if any."""
    raw = read_manifest(run)["stages"].get(stage)
    return StageRecord.model_validate(raw) if raw else None


def record_stage(run: RunDir, stage: str, record: StageRecord) -> None:
    """Store one stage's record in the manifest."""
    _change_manifest(run, lambda data: data["stages"].__setitem__(stage, record.model_dump(mode="json")))


@contextlib.contextmanager
def stage_run(
    run: RunDir,
    stage: str,
    *,
    config_hash: str | None = None,
    input_hash: str | None = None,
) -> Iterator[StageRecord]:
    """Record a stage as running, then done (with timings) or failed (with the error).

    The body fills ``record.counts`` / ``record.details``; they land in the manifest.
    """
    record = StageRecord(
        status="running", config_hash=config_hash, input_hash=input_hash, started=utc_now()
    )
    record_stage(run, stage, record)
    start = time.perf_counter()
    try:
        yield record
    except BaseException as error:
        record.status = "failed"
        record.error = f"{type(error).__name__}: {error}"[:500]
        _finish(run, stage, record, start, best_effort=True)
        raise
    record.status = "done"
    _finish(run, stage, record, start)


def _finish(run: RunDir, stage: str, record: StageRecord, start: float, *, best_effort: bool = False) -> None:
    """Store the stage's final record; after a failure, a full disk must not hide the error itself."""
    record.finished = utc_now()
    record.seconds = round(time.perf_counter() - start, 3)
    try:
        record_stage(run, stage, record)
    except OSError:
        if not best_effort:
            raise
