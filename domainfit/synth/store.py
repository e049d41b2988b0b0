"""synth's files in a run directory, and the commit log that makes resuming exact.

``pairs.jsonl`` and ``rejected.jsonl`` are append-only. Each batch of finished
chunks is committed in three durable appends: rejects, then pairs, then one line
per chunk in ``synth_done.jsonl`` carrying the chunk's resume key and the size
both files had after the batch. The commit log is therefore the truth about what
was finished: on resume, anything beyond the last recorded sizes (a chunk whose
pairs were flushed but whose commit line was not, or a torn line) is cut off and
that chunk is asked again, so no chunk ends up with its pairs twice.

A commit line with ``done: false`` records a chunk that failed for a reason that
may heal (``llm_error``): its reject row is kept, and the next run asks again.

Example::

    store = SynthStore(run)
    state = store.recover()                    # before appending anything
    store.commit([ChunkOutcome(chunk_id, key, True, pairs, rejects)])
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..artifacts import (
    Pair,
    Reject,
    RunDir,
    append_jsonl,
    iter_jsonl,
    read_rows,
    repair_jsonl_tail,
    utc_now,
)
from ..errors import ArtifactError


@dataclass
class ChunkOutcome:
    """Everything one chunk produced, committed together."""

    chunk_id: str
    key: str
    done: bool
    pairs: list[Pair] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


@dataclass
class ResumeState:
    """What earlier runs left: finished chunk keys and the pairs already written."""

    done_keys: set[str] = field(default_factory=set)
    pair_ids: set[str] = field(default_factory=set)
    queries: list[str] = field(default_factory=list)
    dropped_bytes: int = 0
    """Bytes of uncommitted or torn rows cut off the logs."""


def _truncate(path: Path, size: int) -> int:
    """Cut ``path`` back to ``size`` bytes; returns the bytes dropped."""
    current = path.stat().st_size if path.exists() else 0
    if current < size:
        raise ArtifactError(
            f"{path} is shorter than {path.parent / 'synth_done.jsonl'} records (edited or replaced?); "
            "delete synth_done.jsonl to ask the LLM about every chunk again"
        )
    if current > size:
        with path.open("rb+") as handle:
            handle.truncate(size)
    return current - size


class SynthStore:
    """Reads and appends synth's logs; one instance per run, commits are serialised."""

    def __init__(self, run: RunDir):
        self.run = run
        self._lock = threading.Lock()

    def recover(self) -> ResumeState:
        """Repair the logs after a kill and read what is finished. Call before committing."""
        state = ResumeState()
        log = self.run.synth_state
        for path in (log, self.run.pairs, self.run.rejected):
            state.dropped_bytes += repair_jsonl_tail(path)
        last: dict | None = None
        if log.exists():
            for row in iter_jsonl(log):
                last = row
                if row.get("done"):
                    state.done_keys.add(str(row["key"]))
        # no commit line yet (killed, or a full disk, before the first) rolls back to empty logs
        last = last or {}
        state.dropped_bytes += _truncate(self.run.pairs, int(last.get("pairs_bytes", 0)))
        state.dropped_bytes += _truncate(self.run.rejected, int(last.get("rejects_bytes", 0)))
        if self.run.pairs.exists():
            for pair in read_rows(self.run.pairs, Pair):
                state.pair_ids.add(pair.pair_id)
                state.queries.append(pair.query)
        return state

    def commit(self, outcomes: list[ChunkOutcome]) -> None:
        """Durably append the outcomes' rejects and pairs, then their commit lines."""
        if not outcomes:
            return
        try:
            self._append(outcomes)
        except OSError as error:  # a full disk, most likely: the next run rolls back to the last commit
            where = error.filename or self.run.root
            raise ArtifactError(
                f"cannot write {where}: {error.strerror or error}; "
                "the chunks committed so far are kept: free space and run the same command again"
            ) from None

    def _append(self, outcomes: list[ChunkOutcome]) -> None:
        with self._lock:
            append_jsonl(self.run.rejected, [reject for outcome in outcomes for reject in outcome.rejects])
            append_jsonl(self.run.pairs, [pair for outcome in outcomes for pair in outcome.pairs])
            sizes = {
                "pairs_bytes": self.run.pairs.stat().st_size if self.run.pairs.exists() else 0,
                "rejects_bytes": self.run.rejected.stat().st_size if self.run.rejected.exists() else 0,
            }
            now = utc_now()
            append_jsonl(
                self.run.synth_state,
                [
                    {
                        "key": outcome.key,
                        "chunk_id": outcome.chunk_id,
                        "done": outcome.done,
                        "pairs": len(outcome.pairs),
                        "rejects": len(outcome.rejects),
                        **sizes,
                        "time": now,
                    }
                    for outcome in outcomes
                ],
            )

    def ensure_files(self) -> None:
        """Create empty ``pairs.jsonl`` / ``rejected.jsonl`` so a run with no output still has both."""
        for path in (self.run.pairs, self.run.rejected):
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
