"""Small LanceDB / Arrow helpers shared by the chunk index (mining) and the vector cache.

Example::

    table.search().where(f"model = {sql_quote(fingerprint)}")
    vectors_from_arrow(rows["vector"], 384)      # (n, 384) float32
"""

from __future__ import annotations

import numpy as np


def sql_quote(value: str) -> str:
    """``value`` as a SQL string literal for a LanceDB filter (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def vectors_from_arrow(column, dim: int) -> np.ndarray:
    """A FixedSizeList<float32> Arrow column as an ``(n, dim)`` float32 array (no copy when possible)."""
    if hasattr(column, "combine_chunks"):
        column = column.combine_chunks()
    if len(column) == 0:
        return np.zeros((0, dim), dtype=np.float32)
    return column.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32, copy=False)
