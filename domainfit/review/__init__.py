"""review: a local web page to accept, reject and edit generated pairs.

Decisions live in ``review.jsonl`` (append-only, latest per pair wins);
:func:`reviewed_pairs` is what every downstream stage reads instead of
``pairs.jsonl`` directly, so a rejected pair never reaches training.
"""

from .decisions import (
    ReviewSummary,
    apply_review,
    latest_decisions,
    read_decisions,
    record_decision,
    rescued_rejects,
    reviewed_pairs,
)

__all__ = [
    "ReviewSummary",
    "apply_review",
    "latest_decisions",
    "read_decisions",
    "record_decision",
    "rescued_rejects",
    "reviewed_pairs",
    "serve",
]


def serve(*args, **kwargs):
    """Serve the review page (see :mod:`domainfit.review.server`)."""
    from .server import serve as _serve

    return _serve(*args, **kwargs)
