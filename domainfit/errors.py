"""domainfit's exception hierarchy.

Every error a user can cause (a bad config key, an unreadable artifact, a model that
is not on disk, an unreachable LLM) is a :class:`DomainfitError` whose message is one
line that names the file, key or count to fix. The CLI prints these without a
traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


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


class BudgetExceeded(LLMError):
    """The configured token budget was reached; the run stopped cleanly."""


class MiningError(DomainfitError):
    """Negatives cannot be mined from the given pairs and chunks."""


class TrainingError(DomainfitError):
    """The training set or the training settings cannot work."""


class SplitError(DomainfitError):
    """Pairs cannot be split without a leak, or the written split disagrees with the config."""


class EvaluationError(DomainfitError):
    """Queries, corpus or relevance judgements cannot be evaluated."""


class ReviewError(DomainfitError):
    """A review decision cannot be recorded."""


class StageNotBuiltError(DomainfitError):
    """A stage the CLI lists whose implementation has not landed yet."""
