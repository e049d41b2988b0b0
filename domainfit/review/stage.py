"""The review stage: :func:`run_review` serves the review page; :class:`ReviewSummary` is what it reports.

The web app lives in :mod:`.server` and loads (starlette, uvicorn) only when the page
is served: every other stage reads review's outcome through
:func:`~domainfit.review.decisions.reviewed_pairs`, which returns a ReviewSummary too.
"""

from __future__ import annotations

import sys
import threading
import webbrowser
from dataclasses import dataclass, field
from pathlib import Path

from ..artifacts import RunDir


@dataclass
class ReviewSummary:
    """How review changed the pair set: what the manifest and report state."""

    reviewed: int = 0
    accepted: int = 0
    rejected: int = 0
    edited: int = 0
    rescued: int = 0
    unreviewed: int = 0
    decided_ids: set[str] = field(default_factory=set, repr=False)

    def summary(self) -> str:
        """One line for the CLI: what review did to the pair set."""
        return (
            f"review: {self.reviewed} reviewed ({self.accepted} accepted, {self.rejected} rejected, "
            f"{self.edited} edited, {self.rescued} rescued), {self.unreviewed} unreviewed"
        )

    def counts(self) -> dict[str, int]:
        """Counts for ``manifest.json``'s review stage."""
        return {
            "reviewed": self.reviewed,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "edited": self.edited,
            "rescued": self.rescued,
            "unreviewed": self.unreviewed,
        }



def run_review(
    run: RunDir | str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    open_browser: bool = False,
    *,
    allow_remote: bool = False,
    token: str | None = None,
) -> ReviewSummary:
    """Serve the review page for ``run`` until interrupted; prints its URL (with the token).

    A non-loopback ``host`` needs ``allow_remote=True`` and prints a warning. Returns
    how review left the pair set (also recorded in the manifest as stage ``review``).

    Example::

        run_review(RunDir("runs/demo"))             # http://127.0.0.1:PORT/?token=...
        run_review(run, host="0.0.0.0", allow_remote=True)
    """
    from .server import ReviewServer

    server = ReviewServer(run, host, port, token=token, allow_remote=allow_remote)
    counts = server.state.counts()
    print(
        f"reviewing {counts['all']} questions in {server.run.root} "
        f"({counts['unreviewed']} unreviewed, {counts['auto-rejected']} auto-rejected)",
        flush=True,
    )
    if not server.loopback:
        print(
            f"warning: serving on {host}, beyond this machine: anyone who can reach port {server.port} "
            "and sees the URL's token can read these documents and post decisions",
            file=sys.stderr,
            flush=True,
        )
    print(f"open {server.url}", flush=True)
    print("keys: a accept, r reject, e edit, u undo, j/k next/previous, / search, ? help; Ctrl+C stops", flush=True)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, (server.url,)).start()
    return server.serve_forever()
