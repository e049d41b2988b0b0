"""The review page: a Starlette app over one run directory, served by uvicorn.

Routes (all behind :class:`~domainfit.review.security.ReviewGuard`, so every one
needs the token):

==========================  ==================================================
``GET /``                   the page: every pair, its chunk, checks, status
``GET /api/state``          counts and every item's status as JSON
``POST /api/decisions``     ``{"pair_id", "decision", "edited_query"?}``; one line
                            appended to ``review.jsonl`` before the reply
``POST /api/human``         ``{"chunk_id", "query"}``: a question a person wrote for
                            a chunk, appended to ``human.jsonl`` (``origin: human``,
                            a test question only, never trained on)
``GET /export.jsonl``       the reviewed pairs (what training reads) as JSONL;
                            ``?scope=decided`` keeps only pairs a human decided
``GET /static/...``         the page's CSS and JavaScript (local files)
==========================  ==================================================

Example::

    with ReviewServer(RunDir("runs/demo")) as server:   # a background thread
        print(server.url)                                # ...?token=...
    serve(RunDir("runs/demo"))                           # blocks; what the CLI runs
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Literal

import uvicorn
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..artifacts import Pair, ReviewDecision, RunDir, StageRecord, read_chunks, read_rows, record_stage, utc_now
from ..errors import ReviewError, first_validation_error
from .decisions import (
    latest_decisions,
    read_decisions,
    read_rejects,
    record_decision,
    reviewed_pairs,
)
from .human import human_pairs, write_human_pair
from .items import FILTERS, ItemView, ReviewItem, build_items, present, review_counts
from .security import TOKEN_HEADER, TOKEN_PARAM, ReviewGuard, is_loopback, new_token
from .stage import ReviewSummary

HERE = Path(__file__).resolve().parent
MAX_BODY_BYTES = 64_000
MAX_QUERY_CHARS = 2_000

KEYS: tuple[tuple[str, str], ...] = (
    ("a", "accept (rescue an auto-rejected question)"),
    ("r", "reject"),
    ("e", "edit the question: Enter saves, Esc cancels"),
    ("u", "undo: clear the decision"),
    ("w", "write your own question for this chunk (a human test question, never trained on): Enter saves"),
    ("j / \u2193", "next"),
    ("k / \u2191", "previous"),
    ("/", "search"),
    ("1\u20136", "filter: unreviewed, accepted, rejected, edited, auto-rejected, all"),
    ("?", "this help"),
)


class DecisionRequest(BaseModel):
    """The body of ``POST /api/decisions``."""

    model_config = ConfigDict(extra="forbid")

    pair_id: str = Field(min_length=1, max_length=128)
    decision: Literal["accept", "reject", "edit", "rescue", "reset"]
    edited_query: str | None = Field(None, max_length=MAX_QUERY_CHARS)


class HumanQuestionRequest(BaseModel):
    """The body of ``POST /api/human``."""

    model_config = ConfigDict(extra="forbid")

    chunk_id: str = Field(min_length=1, max_length=128)
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)


class BadDecision(Exception):
    """A decision request that must change nothing: (status, one-line reason)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ReviewState:
    """A run's review items and latest decisions, kept in step with ``review.jsonl``.

    Loaded once from disk; every decision is appended (fsynced) before memory
    changes, so what the page shows is what a restart would show.
    """

    def __init__(self, run: RunDir):
        if not run.pairs.exists():
            raise ReviewError(f"no pairs to review: {run.pairs} does not exist; run `domainfit synth` first")
        self.run = run
        pairs = read_rows(run.pairs, Pair)
        self.items: list[ReviewItem] = build_items(pairs, read_rejects(run), read_chunks(run.chunks))
        self.by_id = {item.pair_id: item for item in self.items}
        self.decisions = latest_decisions(read_decisions(run))
        self.chunk_ids = {item.chunk_id for item in self.items if item.chunk is not None}
        self.human: dict[str, list[str]] = {}
        for pair in human_pairs(run):
            self.human.setdefault(pair.chunk_id, []).append(pair.query)
        self._lock = threading.Lock()

    def human_count(self) -> int:
        with self._lock:
            return sum(len(queries) for queries in self.human.values())

    def write_human(self, request: HumanQuestionRequest) -> Pair:
        """Append a person's question for a chunk to ``human.jsonl``; raises BadDecision."""
        if request.chunk_id not in self.chunk_ids:
            raise BadDecision(404, f"unknown chunk_id {request.chunk_id!r}")
        try:
            pair = write_human_pair(self.run, request.chunk_id, request.query)
        except ReviewError as error:
            raise BadDecision(400, str(error)) from None
        with self._lock:
            written = self.human.setdefault(pair.chunk_id, [])
            if pair.query not in written:
                written.append(pair.query)
        return pair

    def views(self) -> list[ItemView]:
        with self._lock:
            return [present(item, self.decisions.get(item.pair_id)) for item in self.items]

    def counts(self) -> dict[str, int]:
        with self._lock:
            counts = review_counts(self.items, self.decisions)
        return {**counts, "human": self.human_count()}

    def decide(self, request: DecisionRequest) -> ReviewDecision:
        """Validate, append to ``review.jsonl``, then update memory; raises BadDecision."""
        item = self.by_id.get(request.pair_id)
        if item is None:
            raise BadDecision(404, f"unknown pair_id {request.pair_id!r}")
        edited = " ".join(request.edited_query.split()) if request.edited_query is not None else None
        if request.decision == "edit" and not edited:
            raise BadDecision(400, "decision 'edit' needs a non-empty edited_query")
        if request.decision != "edit" and request.edited_query is not None:
            raise BadDecision(400, f"edited_query goes only with decision 'edit', not {request.decision!r}")
        if request.decision == "rescue" and item.origin != "auto-rejected":
            raise BadDecision(400, f"pair {item.pair_id} was not auto-rejected; 'rescue' applies to those only")
        decision = ReviewDecision(pair_id=item.pair_id, decision=request.decision, edited_query=edited)
        with self._lock:
            record_decision(self.run, decision)
            if decision.decision == "reset":
                self.decisions.pop(item.pair_id, None)
            else:
                self.decisions[item.pair_id] = decision
        return decision

    def item_state(self, pair_id: str) -> dict[str, Any]:
        with self._lock:
            return present(self.by_id[pair_id], self.decisions.get(pair_id)).state()


def _templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def make_app(
    state: ReviewState,
    token: str,
    *,
    loopback_only: bool = True,
    on_shutdown: Callable[[], None] | None = None,
) -> ReviewGuard:
    """The review web app for ``state``, guarded by ``token`` (see :mod:`.security`).

    ``on_shutdown`` runs when the server stops, also on Ctrl+C and SIGTERM.
    """
    templates = _templates()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if on_shutdown is not None:
            await run_in_threadpool(on_shutdown)

    async def page(request: Request) -> Response:
        views = await run_in_threadpool(state.views)
        html = templates.get_template("review.html").render(
            run_name=state.run.root.name,
            run_path=str(state.run.root),
            token=token,
            token_header=TOKEN_HEADER,
            views=views,
            counts=state.counts(),
            filters=FILTERS,
            keys=KEYS,
            human=state.human,
        )
        return HTMLResponse(html)

    async def api_state(request: Request) -> Response:
        views = await run_in_threadpool(state.views)
        return JSONResponse(
            {"run": str(state.run.root), "counts": state.counts(), "items": [view.state() for view in views]}
        )

    async def api_decide(request: Request) -> Response:
        return await _apply(request, DecisionRequest, "decision", state.decide, lambda decision: {
            "item": state.item_state(decision.pair_id),
            "decision": decision.model_dump(mode="json"),
            "counts": state.counts(),
        })

    async def api_human(request: Request) -> Response:
        return await _apply(request, HumanQuestionRequest, "question", state.write_human, lambda pair: {
            "pair": pair.model_dump(mode="json"),
            "questions": state.human.get(pair.chunk_id, []),
            "counts": state.counts(),
        })

    async def export(request: Request) -> Response:
        scope = request.query_params.get("scope", "all")
        if scope not in ("all", "decided"):
            return PlainTextResponse(f"scope must be 'all' or 'decided', not {scope!r}\n", status_code=400)
        pairs, summary = await run_in_threadpool(reviewed_pairs, state.run)
        if scope == "decided":
            pairs = [pair for pair in pairs if pair.pair_id in summary.decided_ids]
        body = "".join(json.dumps(pair.model_dump(mode="json"), ensure_ascii=False) + "\n" for pair in pairs)
        filename = re.sub(r"[^A-Za-z0-9._-]", "_", state.run.root.name or "run") + "-reviewed.jsonl"
        return Response(
            body,
            media_type="application/jsonl",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/", page),
            Route("/api/state", api_state),
            Route("/api/decisions", api_decide, methods=["POST"]),
            Route("/api/human", api_human, methods=["POST"]),
            Route("/export.jsonl", export),
            Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
        ]
    )
    return ReviewGuard(app, token, loopback_only=loopback_only)


async def _apply(request: Request, model: type, what: str, action: Callable[[Any], Any],
                 answer: Callable[[Any], dict[str, Any]]) -> Response:
    """Parse the body as ``model``, run ``action`` on it off the event loop, answer with ``answer(result)``.

    A body that is too large or malformed gets :func:`_read_request`'s response; a
    refused action its :class:`BadDecision` reason and status.
    """
    parsed = await _read_request(request, model, what)
    if isinstance(parsed, Response):
        return parsed
    try:
        result = await run_in_threadpool(action, parsed)
    except BadDecision as bad:
        return PlainTextResponse(bad.reason + "\n", status_code=bad.status)
    return JSONResponse(answer(result))


async def _read_request(request: Request, model: type, what: str):
    """The body parsed as ``model``, or the error response: 413 past the size cap, 400 if malformed."""
    body = await _bounded_body(request, MAX_BODY_BYTES)
    if body is None:  # closing the connection stops the upload instead of draining it
        return PlainTextResponse(f"body over {MAX_BODY_BYTES} bytes\n", status_code=413, headers={"Connection": "close"})
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        where, problem = first_validation_error(error)
        return PlainTextResponse(f"malformed {what}: {where or 'body'}: {problem['msg']}\n", status_code=400)


async def _bounded_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed ``limit`` bytes.

    Read while streaming, so a huge chunked upload is refused after ``limit``
    bytes instead of being held in memory first.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        return None
    received = bytearray()
    async for part in request.stream():
        received += part
        if len(received) > limit:
            return None
    return bytes(received)


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as error:
        raise ReviewError(f"cannot resolve review host {host!r}: {error.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise ReviewError(f"cannot serve on {host}:{port} ({error.strerror}); pick another --port or omit it") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class ReviewServer:
    """The review page bound to a socket, served by uvicorn in this thread or a background one.

    Refuses a non-loopback ``host`` unless ``allow_remote`` (the CLI's explicit
    ``--host``). Port 0 picks a free port; :attr:`url` carries the token.

    Example::

        with ReviewServer(RunDir("runs/demo")) as server:
            httpx.get(server.url)
    """

    def __init__(
        self,
        run: RunDir | str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: str | None = None,
        allow_remote: bool = False,
    ):
        self.run = run if isinstance(run, RunDir) else RunDir(run)
        self.loopback = is_loopback(host)
        if not self.loopback and not allow_remote:
            raise ReviewError(
                f"review host {host!r} is not loopback; pass --host {host} explicitly to serve beyond this machine"
            )
        self.host = host
        self.token = token or new_token()
        self.state = ReviewState(self.run)
        self.socket = _bind(host, port)
        self.port = self.socket.getsockname()[1]
        self._uvicorn = uvicorn.Server(
            uvicorn.Config(
                make_app(self.state, self.token, loopback_only=self.loopback, on_shutdown=self.record_manifest),
                log_level="warning",
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=2,
            )
        )
        self._thread: threading.Thread | None = None
        self._started = time.perf_counter()
        self._started_at = utc_now()

    @property
    def base_url(self) -> str:
        """``http://host:port`` as a browser on this machine would reach it."""
        shown = self.host
        if shown in ("0.0.0.0", "::", ""):
            shown = socket.gethostname()
        elif ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}"

    @property
    def url(self) -> str:
        """The page's URL, token included: what a reviewer opens."""
        return f"{self.base_url}/?{TOKEN_PARAM}={self.token}"

    def serve_forever(self) -> ReviewSummary:
        """Serve until Ctrl+C / SIGTERM; on the way out the review counts go into the manifest."""
        try:
            self._uvicorn.run(sockets=[self.socket])
        except KeyboardInterrupt:  # Ctrl+C is how a reviewer ends the session, not an error
            pass
        finally:
            self.socket.close()
        return reviewed_pairs(self.run)[1]

    def start(self) -> "ReviewServer":
        """Serve from a background thread; returns once the server accepts requests."""
        self._thread = threading.Thread(target=self._uvicorn.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ReviewError("the review server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop a server started with :meth:`start`."""
        self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.socket.close()

    def __enter__(self) -> "ReviewServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def record_manifest(self) -> None:
        """Note in ``manifest.json`` how many pairs are reviewed, rejected, edited and rescued."""
        _, summary = reviewed_pairs(self.run)
        record_stage(
            self.run,
            "review",
            StageRecord(
                status="done",
                started=self._started_at,
                finished=utc_now(),
                seconds=round(time.perf_counter() - self._started, 3),
                counts=summary.counts(),
            ),
        )
