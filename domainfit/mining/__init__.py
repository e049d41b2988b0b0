"""mining: a LanceDB index of chunk vectors and hard / semi-hard negatives with false-negative guards.

``run_mining`` is the stage behind ``domainfit mine``; ``mine_negatives`` the same
work over vectors; ``select_negatives`` the pure per-pair choice that the
strategies, score rules and guards live in.

Example::

    from domainfit.mining import run_mining
    result = run_mining(RunDir("runs/demo"), RunConfig())
    print(result.summary())
"""

from .index import AnnReport, ChunkIndex, IndexUpdate, chunk_ref
from .mine import MiningOutcome, MiningResult, check_window, mine_negatives, run_mining
from .negatives import (
    DROP_REASONS,
    GUARDS,
    RULES,
    Candidate,
    ChunkRef,
    Exclusions,
    Selection,
    guard_reason,
    rule_reason,
    select_negatives,
)
from .stats import MiningStats, distribution
from .triplets import MinedPair, triplets_schema, triplets_table

__all__ = [
    "AnnReport",
    "Candidate",
    "ChunkIndex",
    "ChunkRef",
    "DROP_REASONS",
    "Exclusions",
    "GUARDS",
    "IndexUpdate",
    "MinedPair",
    "MiningOutcome",
    "MiningResult",
    "MiningStats",
    "RULES",
    "Selection",
    "check_window",
    "chunk_ref",
    "distribution",
    "guard_reason",
    "mine_negatives",
    "rule_reason",
    "run_mining",
    "select_negatives",
    "triplets_schema",
    "triplets_table",
]
