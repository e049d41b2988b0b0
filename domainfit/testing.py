"""A scripted OpenAI-protocol HTTP server for tests and benchmarks (stdlib only).

It lives in the package, not in ``tests/``, so the benchmarks and anyone testing
code built on domainfit can import it as ``domainfit.testing``.

:class:`OpenAIStub` listens on 127.0.0.1 (a free port, stdlib ``http.server`` in a
thread) and answers what domainfit's LLM code sends, over real HTTP, to the real
``openai`` client:

* ``GET /v1/models``
* ``POST /v1/chat/completions`` — instructor's ``tools`` mode (a tool call named
  after the requested function) and ``json`` mode (JSON message content), with
  ``usage``;
* ``POST /v1/completions`` — few-shot completion text for base-model prompts.
* the Batch API: ``POST /v1/files`` (the openai client's multipart upload),
  ``GET /v1/files/{id}`` and ``/content``, ``POST /v1/batches``, ``GET /v1/batches``
  and ``/v1/batches/{id}``. A batch stays ``in_progress`` for ``batch_polls``
  polls, then each line is answered like a live request (its chunk's script) into
  the output file, HTTP errors into the error file; ``batch_status`` makes the
  n-th batch expire, fail or be cancelled instead.

Each request is matched to a chunk by a *key* found in the chunk's text (default:
a ``ZX-...`` marker, else the passage's first 40 characters) and gets the next
behaviour of that key's script, then ``default``. Behaviours are small
dataclasses: :class:`Good`, :class:`Answer`, :class:`Malformed`,
:class:`Ungrounded`, :class:`Copied`, :class:`DuplicateQuestions`,
:class:`RateLimited`, :class:`ServerError`, :class:`Hang`, :class:`Drop`. Every
request is logged as a :class:`StubRequest` (key, attempt, behaviour, status,
tokens reported), so tests can assert how often a chunk was asked and what the
usage totals must be. Batch lines are logged too, with their ``batch_id``.
``latency_s`` delays every live answer (for benchmarks).

The chunk is found between ``<passage>`` tags (the last pair in the prompt).
``SAMPLE_PASSAGES`` / :func:`write_sample_docs` give 16 short, topically distinct
one-chunk documents whose ``ZX-`` markers are their keys, for stage tests that need
a document folder the stub answers well.

Example::

    with OpenAIStub({"ZX-ALPHA": [RateLimited(0.05), Good()]}) as stub:
        client = openai.OpenAI(base_url=stub.base_url, api_key="x")
        ...
        assert stub.count("ZX-ALPHA") == 2
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping, Sequence

# --------------------------------------------------------------------------- behaviours


@dataclass(frozen=True)
class Good:
    """Grounded, distinct questions built from the passage's own sentences (``n`` of them)."""

    n: int | None = None


@dataclass(frozen=True)
class Answer:
    """Exactly these ``(question, evidence)`` items."""

    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Malformed:
    """An answer that is not the requested structure (broken JSON / no labelled lines)."""


@dataclass(frozen=True)
class Ungrounded:
    """A question whose evidence is nowhere in the passage."""


@dataclass(frozen=True)
class Copied:
    """A question that copies the passage's first words verbatim (plus a good one)."""


@dataclass(frozen=True)
class DuplicateQuestions:
    """The same good question twice."""


@dataclass(frozen=True)
class RateLimited:
    """HTTP 429 with a retry hint in ``header`` (``retry-after`` seconds or ``retry-after-ms``)."""

    retry_after: float = 0.05
    header: str = "retry-after"


@dataclass(frozen=True)
class ServerError:
    """An HTTP 5xx error."""

    status: int = 500


@dataclass(frozen=True)
class Hang:
    """Answer only after ``seconds`` (past the client's timeout)."""

    seconds: float = 5.0


@dataclass(frozen=True)
class Drop:
    """Send the start of a response, then close the socket."""


Behaviour = Any
Script = Mapping[str, Sequence[Behaviour]] | Callable[["StubRequest"], Behaviour | None]


@dataclass
class StubRequest:
    """One request the stub received, and what it answered."""

    index: int
    path: str
    kind: str  # 'questions', 'judge' or 'models'
    key: str = ""
    attempt: int = 0  # 0-based count of earlier question requests with this key
    passage: str = ""
    behaviour: str = ""
    status: int = 200
    prompt_tokens: int = 0
    completion_tokens: int = 0
    items: list[tuple[str, str]] = field(default_factory=list)
    prompt: str = ""
    """The whole prompt text (chat messages joined by newlines)."""
    body: dict[str, Any] = field(default_factory=dict)
    """The request body as sent (JSON)."""
    batch_id: str | None = None
    """The batch this request was a line of; None for a live request."""
    authorization: str = ""
    """The live request's ``Authorization`` header (how the client sent its API key)."""


@dataclass
class StubReply:
    """What the stub answers one request: a status and JSON body, or a cut connection."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    cut: str | None = None  # 'drop' or 'hang'
    hang_s: float = 0.0


# --------------------------------------------------------------------------- answers

_PASSAGE = re.compile(r"<passage>\s*(.*?)\s*</passage>", re.DOTALL)
_MARKER = re.compile(r"\bZX-[A-Za-z0-9]+")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{3,}")
_STOPWORDS = frozenset(
    "this that with from have been must will when where which what your their there these those "
    "into also only over under than then they them each such more most other some after before "
    "about while shall should would could".split()
)


def passage_of(prompt: str) -> str:
    """The text of the last ``<passage>...</passage>`` in a prompt ('' if none)."""
    found = _PASSAGE.findall(prompt)
    return found[-1] if found else ""


def marker_key(passage: str) -> str:
    """A chunk's key: its first ``ZX-...`` marker, else its first 40 characters."""
    match = _MARKER.search(passage)
    return match.group(0) if match else " ".join(passage.split())[:40]


def passage_sentences(passage: str, min_words: int = 5) -> list[str]:
    """Whole sentences of the passage with at least ``min_words`` words, verbatim."""
    sentences = [match.group(0).strip() for match in _SENTENCE.finditer(passage)]
    return [sentence for sentence in sentences if len(sentence.split()) >= min_words]


def question_about(sentence: str) -> str:
    """A question on a sentence's content words that copies no run of its wording."""
    words: list[str] = []
    for word in _WORD.findall(sentence):
        if word.lower() not in _STOPWORDS and word.lower() not in (w.lower() for w in words):
            words.append(word)
    picked = sorted(words, key=len, reverse=True)[:3] or ["this"]
    if len(picked) == 1:
        return f"Which rule covers {picked[0]}?"
    return f"Which rule links {', '.join(picked[:-1])} and {picked[-1]}?"


def good_items(passage: str, n: int) -> list[tuple[str, str]]:
    """``n`` (question, evidence) items, one per sentence, evidence verbatim."""
    return [(question_about(sentence), sentence) for sentence in passage_sentences(passage)[:n]]


def default_completion(items: Sequence[tuple[str, str]]) -> str:
    """Completion text in a generic ``Question:``/``Evidence:`` layout."""
    return "".join(f"Question: {question}\nEvidence: {evidence}\n" for question, evidence in items)


# --------------------------------------------------------------------------- server


class OpenAIStub:
    """The scripted server; use as a context manager or call ``start()``/``stop()``.

    Args:
        script: key -> behaviours for that key's successive question requests, or a
            function of the :class:`StubRequest` returning a behaviour (None = default).
        default: the behaviour once a key's script is used up.
        latency_s: fixed delay before every answer.
        questions: items a :class:`Good` answer carries by default.
        model: the id ``/v1/models`` reports.
        judge_score: the score judge requests get.
        completion_renderer: turns items into ``/v1/completions`` text (pass
            ``domainfit.synth.prompts.render_completion`` to answer like a model
            continuing domainfit's few-shot prompt).
        completion_for: when given, turns the :class:`StubRequest` (its ``prompt`` and
            ``items``) into the completion text instead, e.g. to answer in the layout
            of the prompt that was sent.
        key: maps a passage to its chunk key.
        batch_api: serve ``/v1/files`` and ``/v1/batches`` (False: they answer 404).
        batch_polls: how many ``GET /v1/batches/{id}`` see a batch still
            ``in_progress`` before it finishes.
        batch_status: how the 1st, 2nd, ... batch ends: ``completed`` (the default),
            ``expired`` (the first half of its lines answered, the rest in the error
            file as ``batch_expired``), ``failed`` (nothing answered) or ``cancelled``.
            Each line of a finished batch is answered like a live request (its
            chunk's script, then ``default``); a line whose behaviour is an HTTP error
            lands in the error file.
    """

    def __init__(
        self,
        script: Script | None = None,
        *,
        default: Behaviour = Good(),
        latency_s: float = 0.0,
        questions: int = 2,
        model: str = "stub",
        judge_score: int = 5,
        completion_renderer: Callable[[Sequence[tuple[str, str]]], str] = default_completion,
        completion_for: Callable[["StubRequest"], str] | None = None,
        key: Callable[[str], str] = marker_key,
        batch_api: bool = True,
        batch_polls: int = 2,
        batch_status: Sequence[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.script = script or {}
        self.default = default
        self.latency_s = latency_s
        self.questions = questions
        self.model = model
        self.judge_score = judge_score
        self.completion_renderer = completion_renderer
        self.completion_for = completion_for
        self.key = key
        self.batch_api = batch_api
        self.batch_polls = batch_polls
        self.batch_status = list(batch_status)
        self.files: dict[str, dict[str, Any]] = {}
        """Uploaded and generated files by id: ``{"bytes": ..., "purpose": ..., "filename": ...}``."""
        self.batches: dict[str, dict[str, Any]] = {}
        """Batch objects by id, as ``GET /v1/batches/{id}`` returns them."""
        self.batch_calls: list[tuple[str, str]] = []
        """(method, path) of every files/batches request, in order."""
        self._batch_polls_seen: dict[str, int] = {}
        self.requests: list[StubRequest] = []
        self._lock = threading.Lock()
        self._attempts: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        """Most requests being answered at the same moment (bounded-concurrency checks)."""
        self._closing = threading.Event()
        self._server = _QuietServer((host, port), _handler_class(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        """What to give an OpenAI client (``.../v1``)."""
        return f"{self.url}/v1"

    def start(self) -> "OpenAIStub":
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="openai-stub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "OpenAIStub":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what happened

    def question_requests(self, key: str | None = None) -> list[StubRequest]:
        with self._lock:
            return [r for r in self.requests if r.kind == "questions" and (key is None or r.key == key)]

    def count(self, key: str) -> int:
        """How many question requests mentioned this chunk key."""
        return len(self.question_requests(key))

    def keys(self) -> set[str]:
        return {r.key for r in self.question_requests()}

    def usage_reported(self) -> tuple[int, int]:
        """(prompt_tokens, completion_tokens) summed over every answered request."""
        with self._lock:
            answered = [r for r in self.requests if r.status == 200 and r.kind != "models"]
            return sum(r.prompt_tokens for r in answered), sum(r.completion_tokens for r in answered)

    # -- answering

    def _next_behaviour(self, record: StubRequest) -> Behaviour:
        if callable(self.script):
            chosen = self.script(record)
            return self.default if chosen is None else chosen
        plan = self.script.get(record.key, ())
        return plan[record.attempt] if record.attempt < len(plan) else self.default

    def _register(self, path: str, kind: str, passage: str, prompt: str = "") -> StubRequest:
        with self._lock:
            key = self.key(passage) if kind != "models" else ""
            attempt = 0
            if kind == "questions":
                attempt = self._attempts.get(key, 0)
                self._attempts[key] = attempt + 1
            record = StubRequest(len(self.requests), path, kind, key, attempt, passage, prompt=prompt)
            self.requests.append(record)
            return record

    def items_for(self, behaviour: Behaviour, passage: str) -> list[tuple[str, str]]:
        if isinstance(behaviour, Answer):
            return [tuple(item) for item in behaviour.items]
        good = good_items(passage, self.questions if not isinstance(behaviour, Good) or behaviour.n is None
                          else behaviour.n)
        if isinstance(behaviour, Ungrounded):
            return [("Which colour is the moon in this region?", "The moon is made of green cheese.")]
        if isinstance(behaviour, Copied):
            words = passage.split()[:14]
            return [(" ".join(words).rstrip(".") + "?", " ".join(words)), *good[:1]]
        if isinstance(behaviour, DuplicateQuestions):
            return good[:1] * 2
        return good


    def reply(self, path: str, body: dict[str, Any], batch_id: str | None = None, authorization: str = "") -> StubReply:
        """The scripted answer to one completions request (live, or a line of batch ``batch_id``)."""
        chat = path.rstrip("/").endswith("/chat/completions")
        if chat:
            prompt = "\n".join(
                message["content"] if isinstance(message.get("content"), str) else ""
                for message in body.get("messages", [])
            )
        else:
            prompt = str(body.get("prompt", ""))
        tools = body.get("tools") or []
        tool_name = tools[0]["function"]["name"] if tools else None
        is_judge = tool_name == "JudgeScore" or "Rate how good" in prompt
        record = self._register(path, "judge" if is_judge else "questions", passage_of(prompt), prompt)
        record.body, record.batch_id, record.authorization = body, batch_id, authorization
        behaviour = Good() if is_judge else self._next_behaviour(record)
        record.behaviour = type(behaviour).__name__
        if self.latency_s and batch_id is None:
            time.sleep(self.latency_s)

        if isinstance(behaviour, RateLimited):
            record.status = 429
            value = (
                str(int(behaviour.retry_after * 1000))
                if behaviour.header == "retry-after-ms"
                else f"{behaviour.retry_after:g}"
            )
            return StubReply(429, {"error": {"message": "rate limited", "type": "rate_limit"}}, {behaviour.header: value})
        if isinstance(behaviour, ServerError):
            record.status = behaviour.status
            return StubReply(behaviour.status, {"error": {"message": "scripted failure", "type": "server_error"}})
        if isinstance(behaviour, Drop):
            record.status = 0
            return StubReply(0, cut="drop")
        if isinstance(behaviour, Hang):
            record.status = 0
            return StubReply(0, cut="hang", hang_s=behaviour.seconds)

        if is_judge:
            payload: dict[str, Any] = {"score": self.judge_score, "reason": "scripted"}
            text = json.dumps(payload) if chat else f" {self.judge_score}"
        elif isinstance(behaviour, Malformed):
            text = '{"questions": [{"question": "unterminated' if chat else "I am not sure what you mean."
        else:
            record.items = self.items_for(behaviour, record.passage)
            payload = {"questions": [{"question": q, "evidence": e} for q, e in record.items]}
            if chat:
                text = json.dumps(payload)
            elif self.completion_for is not None:
                text = self.completion_for(record)
            else:
                text = self.completion_renderer(record.items)
        record.prompt_tokens = _words(prompt)
        record.completion_tokens = _words(text)
        usage = {
            "prompt_tokens": record.prompt_tokens,
            "completion_tokens": record.completion_tokens,
            "total_tokens": record.prompt_tokens + record.completion_tokens,
        }
        created = int(time.time())
        if not chat:
            return StubReply(200, {
                "id": f"cmpl-{record.index}", "object": "text_completion", "created": created,
                "model": body.get("model", self.model),
                "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}],
                "usage": usage,
            })  # fmt: skip
        if tool_name:
            message: dict[str, Any] = {
                "role": "assistant", "content": None,
                "tool_calls": [{"id": f"call_{record.index}", "type": "function",
                                "function": {"name": tool_name, "arguments": text}}],
            }  # fmt: skip
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": text}
            finish = "stop"
        return StubReply(200, {
            "id": f"chatcmpl-{record.index}", "object": "chat.completion", "created": created,
            "model": body.get("model", self.model),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        })  # fmt: skip

    # -- the Batch API

    def batch_creates(self) -> int:
        """How many batches were created (``POST /v1/batches``)."""
        with self._lock:
            return sum(1 for method, path in self.batch_calls if method == "POST" and path.endswith("/batches"))

    def _batch_request(self, method: str, path: str, body: bytes, content_type: str) -> tuple[int, Any]:
        with self._lock:
            self.batch_calls.append((method, path))
        parts = path.split("/")
        name = parts[-1]
        if method == "POST" and name == "files":
            return self._upload(body, content_type)
        if method == "GET" and name == "content" and parts[-2] in self.files:
            return 200, self.files[parts[-2]]["bytes"]
        if method == "GET" and parts[-2] == "files" and name in self.files:
            return 200, self._file_object(name)
        if method == "POST" and name == "batches":
            return self._create_batch(json.loads(body or b"{}"))
        if method == "GET" and name == "batches":
            with self._lock:
                listed = list(self.batches.values())
            return 200, {"object": "list", "data": listed[::-1], "has_more": False}
        if method == "GET" and parts[-2] == "batches" and name in self.batches:
            return 200, self._poll(name)
        return 404, {"error": {"message": f"no such object: {path}", "type": "invalid_request_error"}}

    def _upload(self, body: bytes, content_type: str) -> tuple[int, Any]:
        """``POST /v1/files``: the openai client's multipart/form-data, read with the stdlib email parser."""
        from email import policy
        from email.parser import BytesParser

        message = BytesParser(policy=policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        if not message.is_multipart():
            return 400, {"error": {"message": "expected multipart/form-data", "type": "invalid_request_error"}}
        fields: dict[str, Any] = {}
        filename = "upload"
        for part in message.iter_parts():
            field_name = part.get_param("name", header="content-disposition")
            if part.get_filename():
                filename = part.get_filename()
            fields[str(field_name)] = part.get_payload(decode=True) or b""
        if "file" not in fields:
            return 400, {"error": {"message": "no file part", "type": "invalid_request_error"}}
        purpose = fields.get("purpose", b"").decode()
        return 200, self._store_file(fields["file"], purpose, filename)

    def _store_file(self, data: bytes, purpose: str, filename: str) -> dict[str, Any]:
        with self._lock:
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = {"bytes": data, "purpose": purpose, "filename": filename, "created_at": int(time.time())}
        return self._file_object(file_id)

    def _file_object(self, file_id: str) -> dict[str, Any]:
        stored = self.files[file_id]
        return {
            "id": file_id, "object": "file", "bytes": len(stored["bytes"]), "created_at": stored["created_at"],
            "filename": stored["filename"], "purpose": stored["purpose"], "status": "processed",
        }  # fmt: skip

    def _create_batch(self, request: dict[str, Any]) -> tuple[int, Any]:
        file_id = request.get("input_file_id", "")
        if file_id not in self.files:
            return 400, {"error": {"message": f"no such file: {file_id}", "type": "invalid_request_error"}}
        lines = self.files[file_id]["bytes"].decode().splitlines()
        with self._lock:
            batch_id = f"batch_{len(self.batches) + 1}"
            self.batches[batch_id] = {
                "id": batch_id, "object": "batch", "endpoint": request.get("endpoint"),
                "input_file_id": file_id, "completion_window": request.get("completion_window", "24h"),
                "status": "validating", "created_at": int(time.time()), "metadata": request.get("metadata"),
                "output_file_id": None, "error_file_id": None, "errors": None,
                "request_counts": {"total": len([line for line in lines if line.strip()]), "completed": 0, "failed": 0},
            }  # fmt: skip
            self._batch_polls_seen[batch_id] = 0
            return 200, dict(self.batches[batch_id])

    def _poll(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            batch = self.batches[batch_id]
            if batch["status"] in ("validating", "in_progress"):
                self._batch_polls_seen[batch_id] += 1
                finished = self._batch_polls_seen[batch_id] > self.batch_polls
            else:
                finished = False
            if not finished:
                if batch["status"] == "validating":
                    batch["status"] = "in_progress"
                return dict(batch)
        self._finish_batch(batch_id)
        with self._lock:
            return dict(self.batches[batch_id])

    def _finish_batch(self, batch_id: str) -> None:
        """Answer every line like a live request; successes to the output file, the rest to the error file."""
        batch = self.batches[batch_id]
        index = list(self.batches).index(batch_id)
        status = self.batch_status[index] if index < len(self.batch_status) else "completed"
        if status == "failed":
            with self._lock:
                batch.update(status="failed", failed_at=int(time.time()), errors={"object": "list", "data": [
                    {"code": "invalid_request", "message": "scripted batch failure", "line": None, "param": None}]})
            return
        lines = [json.loads(line) for line in self.files[batch["input_file_id"]]["bytes"].decode().splitlines() if line.strip()]
        answered = len(lines) if status == "completed" else len(lines) // 2
        output, errors = [], []
        for number, line in enumerate(lines):
            row_id = f"batch_req_{batch_id}_{number}"
            if number >= answered or line["url"] != batch["endpoint"]:
                code = "batch_expired" if status == "expired" else "batch_cancelled"
                if line["url"] != batch["endpoint"]:
                    code = "invalid_url"
                errors.append({"id": row_id, "custom_id": line["custom_id"], "response": None,
                               "error": {"code": code, "message": f"line {number} not processed ({code})"}})
                continue
            reply = self.reply(line["url"], line["body"], batch_id)
            if reply.status == 200:
                output.append({"id": row_id, "custom_id": line["custom_id"], "error": None,
                               "response": {"status_code": 200, "request_id": row_id, "body": reply.body}})
            elif reply.cut is not None:
                errors.append({"id": row_id, "custom_id": line["custom_id"], "response": None,
                               "error": {"code": "server_error", "message": "the model did not answer"}})
            else:
                errors.append({"id": row_id, "custom_id": line["custom_id"], "error": None,
                               "response": {"status_code": reply.status, "request_id": row_id, "body": reply.body}})
        output_file = self._store_file(_jsonl(output), "batch_output", f"{batch_id}_output.jsonl") if output else None
        error_file = self._store_file(_jsonl(errors), "batch_output", f"{batch_id}_error.jsonl") if errors else None
        with self._lock:
            batch.update(
                status=status, output_file_id=output_file and output_file["id"], error_file_id=error_file and error_file["id"],
                request_counts={"total": len(lines), "completed": len(output), "failed": len(errors)},
            )
            batch[f"{status}_at" if status != "cancelled" else "cancelled_at"] = int(time.time())


def _jsonl(rows: Sequence[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()

def _words(text: str) -> int:
    return len(text.split())


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-request is the client's business, not a traceback on stderr.

    Tests read stderr for the CLI's one-line errors; an aborted synth closes its open
    connections, and the stdlib would print each reset while reading the request line.
    """

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, socket.timeout)):
            return
        super().handle_error(request, client_address)


def _handler_class(stub: OpenAIStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart (delayed ACK)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass

        # -- plumbing

        def _send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _read_raw(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length)

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            if self._batch_route("GET", b""):
                return
            if self.path.rstrip("/").endswith("/models"):
                stub._register(self.path, "models", "")
                self._send_json(
                    200,
                    {"object": "list", "data": [{"id": stub.model, "object": "model", "created": 0, "owned_by": "stub"}]},
                )
            else:
                self._send_json(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:  # noqa: N802
            try:
                raw = self._read_raw()
                if self._batch_route("POST", raw):
                    return
                body = json.loads(raw or b"{}")
                if not self.path.endswith("/completions"):
                    self._send_json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                with stub._lock:
                    stub.in_flight += 1
                    stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
                try:
                    self._answer(body)
                finally:
                    with stub._lock:
                        stub.in_flight -= 1
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                self.close_connection = True

        # -- the scripted answer

        def _answer(self, body: dict[str, Any]) -> None:
            reply = stub.reply(self.path, body, authorization=self.headers.get("Authorization", ""))
            if reply.cut == "drop":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"id\": \"cut")
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if reply.cut == "hang":
                stub._closing.wait(reply.hang_s)
                self.close_connection = True
                return
            self._send_json(reply.status, reply.body, reply.headers)

        # -- the Batch API: /files (multipart upload), /files/{id}/content, /batches

        def _batch_route(self, method: str, body: bytes) -> bool:
            """Answer a files/batches request; False when the path is not one of theirs."""
            path = self.path.split("?", 1)[0].rstrip("/")
            if not re.search(r"/(files|batches)(/|$)", path):
                return False
            if not stub.batch_api:
                self._send_json(404, {"error": {"message": f"no route {self.path}"}})
                return True
            status, payload = stub._batch_request(method, path, body, self.headers.get("Content-Type", ""))
            if isinstance(payload, bytes):
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            else:
                self._send_json(status, payload)
            return True

    return Handler


# --------------------------------------------------------------------------- sample documents

SAMPLE_PASSAGES: dict[str, str] = {
    "ZX-TURBINE": "The turbine must be isolated and locked out before any inspection of the runner begins. "
    "Engineers record every isolation permit in the site logbook together with the time and their name. "
    "A second engineer verifies the lockout before the inspection hatch is opened.",
    "ZX-TRAVEL": "Rail tickets costing more than one hundred and fifty pounds are booked through the corporate "
    "travel agency. Hotel stays in London are capped at one hundred and eighty pounds per night including "
    "breakfast. Expense claims without receipts are refused by the finance team after thirty days.",
    "ZX-WARRANTY": "Every controller ships with a thirty-six month warranty starting on the delivery date. "
    "Damage caused by lightning strikes or flooding is excluded from warranty cover. Customers register "
    "warranty claims through the support portal with the serial number and photographs.",
    "ZX-PASSWORD": "Passwords for company laptops need at least fourteen characters and must never be reused. "
    "Multi-factor authentication is mandatory for remote access to the engineering network. Lost laptops "
    "are reported to the security desk within one hour of noticing the loss.",
    "ZX-ONBOARD": "New starters receive their badge and laptop from reception on the first morning. "
    "During week one every newcomer shadows an experienced colleague from the same department. "
    "The probation review takes place with the line manager after ninety days.",
    "ZX-FIRMWARE": "Firmware version four point two fixes the overspeed alarm that triggered during grid faults. "
    "Installing the update requires a maintenance window of roughly twenty minutes per unit. "
    "Operators must back up the parameter file before flashing new firmware.",
    "ZX-PARTS": "Spare bearings for the generator are stocked at the central warehouse in Leeds. "
    "Urgent orders placed before noon leave the warehouse by courier on the same afternoon. "
    "Obsolete gaskets are replaced by the newer silicone model listed in the catalogue appendix.",
    "ZX-SAFETY": "Work inside intakes is forbidden when an amber rain warning covers the catchment. "
    "Lone workers check in with the depot through the mobile application every two hours. "
    "A missed check-in triggers a phone call from the depot supervisor after thirty minutes.",
    "ZX-INCIDENT": "The overspeed event at the northern plant lasted forty seconds before the brake engaged. "
    "Investigators traced the root cause to a stuck hydraulic valve in the governor. "
    "The corrective action replaces all governor valves of that batch before winter.",
    "ZX-CANTEEN": "The staff canteen serves hot lunches between noon and two o'clock on weekdays. "
    "Vegetarian and gluten-free dishes are labelled clearly on the daily menu board. "
    "Meal vouchers can be topped up at the kiosk beside the main entrance.",
    "ZX-PARKING": "Visitors park in the marked bays nearest the reception building. "
    "Electric vehicle chargers are available on the lower deck for a small hourly fee. "
    "Overnight parking requires written permission from the facilities manager.",
    "ZX-TRAINING": "Every technician completes a refresher course on high-voltage switching each year. "
    "Course certificates are uploaded to the learning system by the training coordinator. "
    "Technicians with expired certificates may not operate switchgear until they retake the course.",
    "ZX-BACKUP": "Database backups run every night at two in the morning and are kept for five weeks. "
    "A monthly restore test proves that the backups can actually be recovered. "
    "Backup failures raise a ticket automatically in the operations queue.",
    "ZX-HOLIDAY": "Annual leave requests longer than ten working days need approval four weeks in advance. "
    "Up to five unused days may be carried over into the following calendar year. "
    "Public holidays that fall on a weekend are moved to the next working day.",
    "ZX-NOISE": "Hearing protection is required wherever the sound level exceeds eighty-five decibels. "
    "Noise surveys are repeated after any change to machinery in the turbine hall. "
    "Results of each survey are posted on the noticeboard outside the control room.",
    "ZX-INVOICE": "Supplier invoices are paid within thirty days of receipt when they quote a valid purchase "
    "order. Invoices missing a purchase order number are returned to the supplier unpaid. "
    "Queries about late payments go to the accounts payable mailbox.",
}
"""Short, topically distinct passages (one chunk each) whose ``ZX-`` marker is the stub key."""


def write_sample_docs(folder, passages: Mapping[str, str] | None = None):
    """Write one ``.txt`` document per passage into ``folder``; returns the folder."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for key, text in (passages or SAMPLE_PASSAGES).items():
        (folder / f"{key.lower()}.txt").write_text(f"{key}\n\n{text}\n", encoding="utf-8")
    return folder
