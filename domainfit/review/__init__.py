"""review: a local web page to accept, reject and edit generated pairs.

Decisions live in ``review.jsonl`` (append-only, latest per pair wins);
:func:`reviewed_pairs` is what every downstream stage reads instead of
``pairs.jsonl`` directly, so a rejected pair never reaches training.
:func:`run_review` serves the page (``domainfit review``).
"""

from .decisions import record_decision, reviewed_pairs
from .stage import ReviewSummary, run_review

__all__ = [
    "ReviewSummary",
    "record_decision",
    "reviewed_pairs",
    "run_review",
]
