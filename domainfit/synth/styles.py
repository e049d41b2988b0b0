"""Which query style a chunk is asked for (``synth.query_styles`` / ``synth.query_style_mix``).

Real users search with claims and keywords as well as questions. Each chunk gets
one style, chosen by a hash of its id, so the choice is the same on every re-run
(a resumed run asks the same chunk for the same style) and the mix over many
chunks follows the configured shares.

Example::

    pick_style("3f2a…", ["question", "claim"], [3, 1])   # 'question' for about 3 chunks in 4
"""

from __future__ import annotations

import hashlib
from typing import Sequence

DEFAULT_STYLE = "question"
"""The style of a pair written before styles existed (``pairs.jsonl`` rows without ``style``)."""


def style_shares(styles: Sequence[str], mix: Sequence[float] | None = None) -> list[float]:
    """The share of chunks per style, summing to 1 (equal shares when ``mix`` is None).

    Example::

        style_shares(["question", "claim"], [3, 1])   # [0.75, 0.25]
    """
    weights = [1.0] * len(styles) if mix is None else [float(share) for share in mix]
    total = sum(weights)
    return [weight / total for weight in weights]


def pick_style(chunk_id: str, styles: Sequence[str], mix: Sequence[float] | None = None) -> str:
    """The query style for one chunk: a stable draw from ``styles`` weighted by ``mix``.

    Example::

        pick_style(chunk.chunk_id, cfg.synth.query_styles, cfg.synth.query_style_mix)
    """
    if len(styles) == 1:
        return str(styles[0])
    draw = int.from_bytes(hashlib.sha256(f"query-style:{chunk_id}".encode()).digest()[:8], "big") / 2**64
    shares = style_shares(styles, mix)
    cumulative = 0.0
    for style, share in zip(styles, shares):
        cumulative += share
        if draw < cumulative:
            return str(style)
    return str([style for style, share in zip(styles, shares) if share > 0][-1])  # a rounding edge
