"""Markdown pipe tables: the one table format of every report, card and summary domainfit writes.

Example::

    pipe_table(["dim", "ndcg@10"], [["384", "0.7545"], ["64", "0.6960"]])
    # | dim | ndcg@10 |
    # | --- | --- |
    # | 384 | 0.7545 |
    # | 64 | 0.6960 |
"""

from __future__ import annotations

from typing import Sequence


def pipe_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """``header`` and ``rows`` (cells already formatted) as a Markdown pipe table."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
