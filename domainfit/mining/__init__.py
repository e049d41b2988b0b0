"""mining: a LanceDB index of chunk vectors and hard / semi-hard negatives with false-negative guards.

``run_mining`` is the stage behind ``domainfit mine``; ``mine_negatives`` the same
work over vectors; ``select_negatives`` the pure per-pair choice that the
strategies, score rules and guards live in.

Example::

    from domainfit.mining import run_mining
    result = run_mining(RunDir("runs/demo"), RunConfig())
    print(result.summary())
"""

from .index import ChunkIndex
from .mine import mine_negatives
from .negatives import select_negatives
from .stage import MiningResult, run_mining

__all__ = [
    "ChunkIndex",
    "MiningResult",
    "mine_negatives",
    "run_mining",
    "select_negatives",
]
