"""review: a local web page to accept, reject and edit generated pairs.

Decisions live in ``review.jsonl`` (append-only, latest per pair wins);
:func:`reviewed_pairs` is what every downstream stage reads instead of
``pairs.jsonl`` directly, so a rejected pair never reaches training. Questions a
person writes for a chunk (:func:`write_human_pair`, key ``w``) go to ``human.jsonl``:
a human test set (:func:`human_pairs`), never trained on.
:func:`run_review` serves the page (``domainfit review``).
"""

from .decisions import record_decision, reviewed_pairs
from .human import human_pairs, write_human_pair
from .stage import ReviewSummary, run_review

__all__ = [
    "ReviewSummary",
    "human_pairs",
    "write_human_pair",
    "record_decision",
    "reviewed_pairs",
    "run_review",
]
