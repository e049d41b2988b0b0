"""Checkpoints under ``RUN/checkpoints``: which one to resume from, and when not to.

The Hugging Face trainer writes a checkpoint folder file by file and
``trainer_state.json`` last, so a kill mid-save leaves a folder without it (or with
a torn one). The last *complete* checkpoint is the highest-step folder whose state
file parses and whose weights and optimizer state exist. Checkpoints made under a
different training config or data (``resume.json`` records both hashes) are not
resumed: that would silently mix two trainings.

Example::

    prepare_checkpoints(run.checkpoints_dir, {"config": "ab12", "inputs": "cd34"})
    resume_from = last_complete_checkpoint(run.checkpoints_dir)   # path or None
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any, Mapping

from ..artifacts import read_json, write_json
from ..errors import ArtifactError

RESUME_FILE = "resume.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def checkpoint_step(path: Path) -> int | None:
    """The global step in a ``checkpoint-N`` folder name, or None."""
    match = _CHECKPOINT.match(path.name)
    return int(match.group(1)) if match else None


def is_complete(checkpoint: Path) -> bool:
    """Whether a checkpoint folder has its trainer state (parsable), weights and optimizer."""
    state = checkpoint / "trainer_state.json"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    has_weights = any(checkpoint.rglob(name) for name in _WEIGHTS)
    return has_weights and (checkpoint / "optimizer.pt").exists()


def last_complete_checkpoint(folder: Path) -> Path | None:
    """The highest-step complete checkpoint in ``folder``, or None.

    Example::

        last_complete_checkpoint(Path("runs/x/checkpoints"))   # Path('runs/x/checkpoints/checkpoint-40')
    """
    if not folder.is_dir():
        return None
    candidates = sorted(
        (path for path in folder.iterdir() if path.is_dir() and checkpoint_step(path) is not None),
        key=checkpoint_step,
        reverse=True,
    )
    return next((path for path in candidates if is_complete(path)), None)


def prepare_checkpoints(folder: Path, fingerprint: Mapping[str, Any]) -> list[str]:
    """Make ``folder`` safe to resume from; returns what was discarded (for the log).

    Checkpoints of another fingerprint (config or data changed) are removed, and so
    are incomplete checkpoints (a kill mid-save), which would otherwise be rotated
    or resumed as if whole. Then ``resume.json`` records ``fingerprint``. Run it on
    one process only.
    """
    discarded: list[str] = []
    resume_file = folder / RESUME_FILE
    if folder.is_dir():
        try:
            previous = read_json(resume_file) if resume_file.exists() else None
        except ArtifactError:
            previous = None
        stale = previous != dict(fingerprint)
        for path in sorted(folder.iterdir()):
            if not path.is_dir() or checkpoint_step(path) is None:
                continue
            if stale or not is_complete(path):
                shutil.rmtree(path, ignore_errors=True)
                discarded.append(path.name)
    write_json(resume_file, dict(fingerprint))
    return discarded
