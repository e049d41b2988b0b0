"""domainfit's exception hierarchy.

Every error a user can cause (a bad config key, an unreadable artifact, a model that
is not on disk, an unreachable LLM) is a :class:`DomainfitError` whose message is one
line that names the file, key or count to fix. The CLI prints these without a
traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from pydantic import ValidationError


def first_line(error: BaseException, limit: int | None = None) -> str:
    """The first line of ``error``'s message (its class name when empty), cut to ``limit`` characters.

    Library errors often carry a traceback-sized message; ours are one line. The quotes
    ``KeyError`` puts around its message are dropped.

    Example::

        first_line(OSError("no such file\nsee the docs"))   # 'no such file'
    """
    text = str(error).strip().strip("'\"")
    line = text.splitlines()[0] if text else type(error).__name__
    return line if limit is None else line[:limit]


def first_validation_error(error: "ValidationError") -> tuple[str, dict[str, Any]]:
    """Pydantic's first problem: its dotted location (``''`` at the top level) and its error dict.

    Example::

        where, problem = first_validation_error(error)   # ('train.epochs', {'msg': ..., 'type': ...})
    """
    problem = error.errors()[0]
    return ".".join(str(part) for part in problem["loc"]), problem


class DomainfitError(Exception):
    """Base class: a problem the user can act on, described in one line."""


class ConfigError(DomainfitError):
    """A config key is unknown or its value is invalid."""


class ArtifactError(DomainfitError):
    """An artifact in the run directory is missing, truncated or corrupt."""


class ModelNotFoundError(DomainfitError):
    """An embedding model name resolves to nothing on this machine."""


class DocumentError(DomainfitError):
    """A document folder cannot be used (missing, empty of readable files)."""


class LLMError(DomainfitError):
    """The LLM endpoint cannot be reached or keeps failing."""


class MiningError(DomainfitError):
    """Negatives cannot be mined from the given pairs and chunks."""


class TrainingError(DomainfitError):
    """The training set or the training settings cannot work."""


class SplitError(DomainfitError):
    """Pairs cannot be split without a leak, or the written split disagrees with the config."""


class EvaluationError(DomainfitError):
    """Queries, corpus or relevance judgements cannot be evaluated."""


class CacheError(DomainfitError):
    """The vector cache folder cannot be created, written or read."""


class ReviewError(DomainfitError):
    """A review decision cannot be recorded."""

