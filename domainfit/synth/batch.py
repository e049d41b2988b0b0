"""``llm.mode = "batch"``: the chunks' requests as one Batch API job, polled, resumable.

The OpenAI Batch API (``/v1/files`` + ``/v1/batches``, which other providers
mirror) answers within 24 hours at a lower price. :func:`generate_pairs_in_batches`

1. builds, for every chunk not finished yet, the request body the live path would
   send (:func:`request_body`: the same prompt, model, sampling settings, and for
   chat styles the tool / JSON-schema parameters instructor adds), writes them as
   a JSONL file (``custom_id`` = the chunk's resume key), uploads it
   (``purpose="batch"``) and creates a batch (more than ``llm.batch_max_requests``
   requests, or about 190 MB, go in further batches, one after another);
2. records the batch in ``synth_batch.json`` (atomically: input file id, batch id,
   status, its lines' chunk ids, keys and styles) *before* it polls, so a run killed
   while waiting resumes by polling the same batch instead of paying for it twice;
3. polls every ``llm.batch_poll_interval_s`` until the batch is done, reads the
   output and error files, and parses each answer with the live path's parser and
   validators (:func:`parse_answer`);
4. hands the answers to :func:`~domainfit.synth.generate.generate_pairs`, so the
   checks, the judge (asked live), the reject log, the commit log and the counts
   are the live path's own.

Re-asks: an answer that fails validation is asked again in a follow-up batch, up to
``llm.max_reasks`` rounds — the completion style re-sends the same prompt, as live;
the chat styles send instructor's re-ask messages (the error fed back), as live. An
answer still invalid after the last round gets the reject reason the live path gives
(``invalid_output: ...``). A line the provider failed (the error file: HTTP 5xx,
``batch_expired``) becomes an ``llm_error`` reject with the chunk left not done, as a
request that failed every retry does live: the next run asks for it again.

A batch that ends ``failed``, ``expired`` or ``cancelled`` keeps whatever lines it
answered, is marked collected, and raises :class:`~domainfit.errors.LLMError` in
one line; running the same command again submits a new batch for the rest (or set
``llm.mode = "live"``). ``synth.token_budget`` cannot bound a batch (its tokens are
known only once it is done) and is refused; ``synth.max_chunks`` bounds it instead.

Example::

    run = await generate_pairs_in_batches(eligible, client, checker, store, cfg, run_dir, resume=state)
    print(run.batch_ids, run.usage.total_tokens)
"""

from __future__ import annotations

import asyncio
import collections
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence, TypeVar, cast

import openai
from pydantic import ValidationError

from ..artifacts import Chunk, RunDir, read_json, utc_now, write_json, write_text
from ..config import PromptStyle, RunConfig
from ..errors import ConfigError, LLMError, first_line
from . import prompts
from .generate import AnswerChecker, GenerationReport, chunk_key, every_request_failed, generate_pairs
from .llm import (
    LLMAnswer,
    LLMClient,
    Usage,
    chat_text,
    completion_text,
    instructor_model,
    invalid_detail,
    make_openai_client,
)
from .retry import LLMRequestFailed, call_with_retries
from .schema import QuestionSet, question_set_model
from .store import ResumeState, SynthStore
from .styles import pick_style

T = TypeVar("T")

STATE_FILE = "synth_batch.json"
"""The run directory's record of the batch in flight (or the last one collected)."""

INPUT_FILE = "synth_batch_input.jsonl"
"""A copy of the JSONL last uploaded (a chat re-ask extends the body its line sent)."""

COMPLETION_WINDOW = "24h"
"""The only window the Batch API offers."""

ENDED_UNFINISHED = ("failed", "expired", "cancelled")

MAX_BATCH_BYTES = 190 * 1024 * 1024
"""Input files stay below the Batch API's 200 MB, with room to spare."""

FIND_CREATED_LIMIT = 500
"""How many of the newest batches are searched for one made from a recorded upload."""


def batch_endpoint(style: PromptStyle) -> str:
    """The Batch API ``endpoint`` (and each line's ``url``) for a prompt style."""
    return "/v1/completions" if style is PromptStyle.completion else "/v1/chat/completions"


def _mode(style: PromptStyle) -> Any:
    import instructor

    return instructor.Mode.TOOLS if style is PromptStyle.tools else instructor.Mode.JSON


# --------------------------------------------------------------------------- request bodies and answers


def request_body(client: LLMClient, chunk_text: str, query_style: str = "question") -> dict[str, Any]:
    """The JSON body the live path sends for one chunk's questions (its first attempt).

    Example::

        body = request_body(client, chunk.text)   # {"model": ..., "prompt": ..., "stop": [...], ...}
    """
    endpoint = client.endpoint
    n = client.questions_per_chunk
    if endpoint.style is PromptStyle.completion:
        body: dict[str, Any] = {
            "model": endpoint.model,
            "prompt": prompts.completion_prompt(chunk_text, n, query_style),
            "max_tokens": endpoint.max_tokens,
            "temperature": endpoint.temperature,
            "stop": prompts.COMPLETION_STOP,
        }
        if client.seed is not None:
            body["seed"] = client.seed
        return body
    from instructor.processing.response import handle_response_model

    _, kwargs = handle_response_model(
        instructor_model(question_set_model(n, query_style)),
        _mode(endpoint.style),
        messages=prompts.chat_messages(chunk_text, n, query_style),
        model=endpoint.model,
        temperature=endpoint.temperature,
        max_tokens=endpoint.max_tokens,
    )
    return _jsonable(kwargs)


def _jsonable(value: Any) -> Any:
    """Plain JSON data (instructor's re-ask messages may hold the openai client's models)."""
    return json.loads(json.dumps(value, default=lambda item: item.model_dump(mode="json", exclude_none=True)))


@dataclass
class Parsed:
    """One batch answer read like a live one: questions, or a failure, or a re-ask to send."""

    answer: LLMAnswer
    invalid: bool = False
    """The answer failed validation: the live path would re-ask."""
    reask_body: dict[str, Any] | None = None
    """The chat styles' re-ask (instructor's messages with the error fed back), when ``sent`` was given."""


def parse_answer(
    client: LLMClient, sent: dict[str, Any], response: dict[str, Any], query_style: str = "question"
) -> Parsed:
    """Parse and validate one answered line with the live path's parser; ``sent`` is the body it answers."""
    style = client.endpoint.style
    model = question_set_model(client.questions_per_chunk, query_style)
    usage = Usage(requests=1)
    try:
        if style is PromptStyle.completion:
            completion: Any = openai.types.Completion.model_validate(response)
        else:
            completion = openai.types.chat.ChatCompletion.model_validate(response)
    except ValidationError:
        return Parsed(LLMAnswer(raw=first_line(json.dumps(response), 300), usage=usage,
                                failure="llm_error: the batch answer is not a completion"))  # fmt: skip
    usage.count_response(completion)
    if style is PromptStyle.completion:
        raw = completion_text(completion)
        try:
            result = model.model_validate(prompts.parse_completion(raw, style=query_style))
        except ValidationError as invalid:
            return Parsed(LLMAnswer(raw=raw, usage=usage, failure=f"invalid_output: {invalid_detail(invalid)}"), True)
        return Parsed(LLMAnswer(questions=list(cast(QuestionSet, result).questions), raw=raw, usage=usage))
    return _parse_chat(client, model, sent, completion, usage)


def _parse_chat(client: LLMClient, model: type[QuestionSet], sent: dict[str, Any], completion: Any, usage: Usage) -> Parsed:
    from instructor.core import IncompleteOutputException
    from instructor.processing.response import handle_reask_kwargs, handle_response_model, process_response

    mode = _mode(client.endpoint.style)
    prepared, _ = handle_response_model(instructor_model(model), mode, messages=[])
    raw = chat_text(completion)
    try:
        result = process_response(completion, response_model=prepared, stream=False, mode=mode)
    except IncompleteOutputException:
        return Parsed(LLMAnswer(raw=raw, usage=usage, failure="truncated_output"))
    except (ValidationError, json.JSONDecodeError, ValueError) as invalid:
        reask = _jsonable(handle_reask_kwargs(dict(sent), mode, completion, invalid)) if sent else None
        failure = f"invalid_output: {invalid_detail(invalid)}"
        return Parsed(LLMAnswer(raw=raw, usage=usage, failure=failure), True, reask)
    return Parsed(LLMAnswer(questions=list(cast(QuestionSet, result).questions), raw=raw, usage=usage))


# --------------------------------------------------------------------------- the record in the run directory


@dataclass
class BatchLine:
    """One request of a batch: which chunk it asks about, under which resume key and query style."""

    custom_id: str
    chunk_id: str
    key: str
    style: str = "question"


@dataclass
class BatchRecord:
    """What ``synth_batch.json`` holds: enough to find, poll and collect the batch after a kill."""

    base_url: str
    model: str
    endpoint: str
    round: int
    lines: list[BatchLine]
    input_file_id: str
    batch_id: str | None = None
    status: str = "uploaded"
    collected: bool = False
    submitted_at: str = field(default_factory=utc_now)
    batch_ids: list[str] = field(default_factory=list)
    """Every batch of this record's rounds, first to last."""

    @classmethod
    def load(cls, path: Path) -> "BatchRecord | None":
        if not path.exists():
            return None
        data = read_json(path)
        try:
            return cls(**{**data, "lines": [BatchLine(**line) for line in data["lines"]]})
        except (TypeError, KeyError) as error:
            raise LLMError(f"{path} is not a batch record ({first_line(error)}); delete it to submit a new batch") from None

    def save(self, path: Path) -> None:
        write_json(path, asdict(self))


# --------------------------------------------------------------------------- the run


@dataclass
class BatchRun:
    """What :func:`generate_pairs_in_batches` did: the batches, their polls and what they cost."""

    batch_ids: list[str] = field(default_factory=list)
    resumed: str | None = None
    """The batch id a killed run had left pending, polled instead of submitting again."""
    polls: int = 0
    usage: Usage = field(default_factory=Usage)
    """Tokens and requests of the batch lines (priced at ``llm.batch_price_factor``)."""


class _Answered:
    """The live client, except that ``write_questions`` hands back answers a batch already gave.

    Everything else (endpoint, usage of judge calls, failures) is the live client's,
    so :func:`generate_pairs` treats batch answers exactly like live ones.
    """

    def __init__(self, client: LLMClient, answers: dict[tuple[str, str], collections.deque]):
        self._client = client
        self._answers = answers

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def write_questions(self, chunk_text: str, query_style: str = "question") -> LLMAnswer:
        return self._client._redacted(self._answers[(chunk_text, str(query_style))].popleft())


class NoBatchAPI(LLMError):
    """The endpoint answers 404 for ``/files`` or ``/batches``."""


async def generate_pairs_in_batches(
    chunks: Sequence[Chunk],
    client: LLMClient,
    checker: AnswerChecker,
    store: SynthStore,
    config: RunConfig,
    run: RunDir,
    *,
    resume: ResumeState | None = None,
    report: GenerationReport | None = None,
    progress: bool = False,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    outcome: BatchRun | None = None,
) -> BatchRun:
    """Ask about every unfinished chunk through the Batch API; commit answers like live ones.

    A batch left pending in ``run`` by a killed run is polled and collected first
    (never submitted again); then the chunks still to do go in new batches
    (``llm.batch_max_requests`` each, one after another). Counts
    land in ``report`` (as :func:`generate_pairs` keeps them); the returned
    :class:`BatchRun` says which batches ran and what their lines cost (pass
    ``outcome`` to keep it when an error is raised).
    """
    if config.synth.token_budget is not None:
        raise ConfigError(
            "synth.token_budget cannot bound a batch (its tokens are known only once it is done); "
            "unset it or bound the batch with synth.max_chunks"
        )
    generation = _BatchGeneration(chunks, client, checker, store, config, run, resume or ResumeState(),
                                  report if report is not None else GenerationReport(), progress, sleep)  # fmt: skip
    if outcome is not None:
        generation.outcome = outcome
    return await generation.run()


class _BatchGeneration:
    """One :func:`generate_pairs_in_batches` call: submit, poll, collect, re-ask, commit."""

    def __init__(self, chunks: Sequence[Chunk], client: LLMClient, checker: AnswerChecker, store: SynthStore,
                 config: RunConfig, run: RunDir, resume: ResumeState, report: GenerationReport, progress: bool,
                 sleep: Callable[[float], Awaitable[None]]) -> None:  # fmt: skip
        self.client = client
        self.checker = checker
        self.store = store
        self.config = config
        self.resume = resume
        self.report = report
        self.progress = progress
        self.sleep = sleep
        self.path = run.root / STATE_FILE
        self.url = client.endpoint.base_url
        self.endpoint = batch_endpoint(client.endpoint.style)
        self.api = make_openai_client(self.url, config.llm, client.endpoint.timeout_s)
        self.outcome = BatchRun()
        self.by_key: dict[str, tuple[Chunk, str]] = {}
        for chunk in chunks:
            style = pick_style(chunk.chunk_id, config.synth.query_styles, config.synth.query_style_mix)
            self.by_key[chunk_key(chunk.chunk_id, client, style)] = (chunk, style)
        self.answered: set[str] = set()
        """Keys whose answer (or final failure) this run has committed."""
        self.live_usage_before = client.usage.copy()

    async def run(self) -> BatchRun:
        self.report.chunks = len(self.by_key)
        self.report.already_done = sum(1 for key in self.by_key if key in self.resume.done_keys)
        try:
            pending = BatchRecord.load(self.path)
            if pending is not None and not pending.collected:
                self._check_same_endpoint(pending)
                self.outcome.resumed = pending.batch_id or pending.input_file_id
                await self._finish(pending)
            todo = [key for key in self.by_key if key not in self.resume.done_keys and key not in self.answered]
            lines = [BatchLine(key, self.by_key[key][0].chunk_id, key, self.by_key[key][1]) for key in todo]
            bodies = {line.custom_id: request_body(self.client, self.by_key[line.key][0].text, line.style) for line in lines}
            for part in split_batches(lines, bodies, self.config.llm.batch_max_requests):
                await self._finish(await self._submit(part, bodies, round_=0))
        finally:
            await self.api.close()
            live = self.client.usage.minus(self.live_usage_before)
            self.report.usage = Usage()
            self.report.usage.add(live)
            self.report.usage.add(self.outcome.usage)
        if self.report.chunks_failed and not self.report.chunks_done:  # as live: no answer at all is an error
            raise LLMError(every_request_failed(self.client.failures, self.report.chunks_failed, self.url))
        return self.outcome

    def _check_same_endpoint(self, pending: BatchRecord) -> None:
        if (pending.base_url, pending.model, pending.endpoint) != (self.url, self.client.endpoint.model, self.endpoint):
            raise ConfigError(
                f"{self.path} holds batch {pending.batch_id or pending.input_file_id} sent to {pending.model} at "
                f"{pending.base_url} ({pending.endpoint}); resume with that llm.base_url / llm.model / "
                "llm.prompt_style, or delete the file to drop that batch"
            )

    # -- talking to the Batch API

    async def _call(self, what: str, send: Callable[[], Awaitable[T]]) -> T:
        """One Batch API request, retried like any request; a 404 means no Batch API (or no such batch)."""

        async def attempt() -> T:
            try:
                return await send()
            except openai.NotFoundError:
                if what in ("POST /files", "POST /batches", "GET /batches"):
                    raise NoBatchAPI(
                        f"the LLM endpoint {self.url} has no Batch API ({what} answered HTTP 404); "
                        'set llm.mode = "live" to send the requests one by one'
                    ) from None
                raise LLMError(
                    f"{what} at {self.url} answered HTTP 404: the provider does not know it (another account or "
                    f"endpoint?); delete {self.path} to send those chunks in a new batch"
                ) from None

        try:
            return await call_with_retries(attempt, self.client.policy, url=self.url)
        except LLMRequestFailed as failed:
            raise LLMError(
                f"{what} at {self.url} failed: {failed}; the batch stays recorded in {self.path}: "
                "run the same command again to carry on"
            ) from None

    async def _submit(self, lines: list[BatchLine], bodies: dict[str, dict[str, Any]], round_: int,
                      earlier: Sequence[str] = ()) -> BatchRecord:  # fmt: skip
        """Upload the lines and create their batch, recording each step before the next."""
        content = "".join(
            json.dumps({"custom_id": line.custom_id, "method": "POST", "url": self.endpoint, "body": bodies[line.custom_id]},
                       ensure_ascii=False) + "\n"
            for line in lines
        ).encode()  # fmt: skip
        uploaded = await self._call(
            "POST /files",
            lambda: self.api.files.create(file=("domainfit-synth.jsonl", content, "application/jsonl"), purpose="batch"),
        )
        record = BatchRecord(self.url, self.client.endpoint.model, self.endpoint, round_, lines, uploaded.id,
                             batch_ids=list(earlier))  # fmt: skip
        header = json.dumps({"input_file_id": uploaded.id}) + "\n"
        write_text(self.path.parent / INPUT_FILE, header + content.decode())
        record.save(self.path)  # a kill from here on finds the upload and looks for its batch
        await self._create(record)
        return record

    async def _create(self, record: BatchRecord) -> None:
        batch = await self._call(
            "POST /batches",
            lambda: self.api.batches.create(
                input_file_id=record.input_file_id,
                endpoint=cast(Any, record.endpoint),
                completion_window=COMPLETION_WINDOW,
                metadata={"created_by": "domainfit synth", "round": str(record.round)},
            ),
        )
        self._adopt(record, batch)

    def _adopt(self, record: BatchRecord, batch: Any) -> None:
        record.batch_id, record.status = batch.id, batch.status
        record.batch_ids.append(batch.id)
        record.save(self.path)
        self.outcome.batch_ids.append(batch.id)

    async def _find_created(self, record: BatchRecord) -> bool:
        """After a kill between upload and record: the batch made from our file, if it was created."""
        page = await self._call("GET /batches", lambda: self.api.batches.list(limit=100))
        seen = 0
        async for batch in page:  # newest first
            if batch.input_file_id == record.input_file_id:
                self._adopt(record, batch)
                return True
            seen += 1
            if seen >= FIND_CREATED_LIMIT:
                break
        return False

    async def _wait(self, record: BatchRecord) -> Any:
        """Poll until the batch is done (or ended unfinished); the record follows its status."""
        assert record.batch_id is not None
        batch_id = record.batch_id
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(record.lines), desc=f"synth batch {batch_id}", unit="request", dynamic_ncols=True)
        try:
            while True:
                batch = await self._call(f"GET /batches/{batch_id}", lambda: self.api.batches.retrieve(batch_id))
                self.outcome.polls += 1
                if batch.status != record.status:
                    record.status = batch.status
                    record.save(self.path)
                counts = batch.request_counts
                if bar is not None and counts is not None:
                    bar.update(counts.completed + counts.failed - bar.n)
                if batch.status == "completed" or batch.status in ENDED_UNFINISHED:
                    return batch
                await self.sleep(self.config.llm.batch_poll_interval_s)
        finally:
            if bar is not None:
                bar.close()

    async def _lines(self, file_id: str | None) -> dict[str, dict[str, Any]]:
        if not file_id:
            return {}
        content = await self._call(f"GET /files/{file_id}/content", lambda: self.api.files.content(file_id))
        rows = {}
        for line in content.text.splitlines():
            if line.strip():
                row = json.loads(line)
                rows[str(row.get("custom_id"))] = row
        return rows

    # -- collecting

    async def _finish(self, record: BatchRecord) -> None:
        """Poll ``record``'s batch to the end, commit its final answers, re-ask the invalid ones."""
        while True:
            if record.batch_id is None and not await self._find_created(record):
                await self._create(record)
            batch = await self._wait(record)
            results = await self._lines(batch.output_file_id)
            errors = await self._lines(batch.error_file_id)
            bodies = self._sent_bodies(record) if record.round < self.config.llm.max_reasks else {}
            final: list[tuple[BatchLine, LLMAnswer]] = []
            reasks: list[tuple[BatchLine, dict[str, Any]]] = []
            for line in record.lines:
                answer, reask = self._read(line, results.get(line.custom_id), errors.get(line.custom_id), bodies, record)
                if answer is None:
                    continue  # not answered (an expired batch): the chunk is asked again next run
                if record.round:
                    answer.usage.reasks += 1
                self.outcome.usage.add(answer.usage)
                if reask is not None and record.round < self.config.llm.max_reasks:
                    reasks.append((line, reask))
                else:
                    final.append((line, answer))
            await self._commit(final)
            if batch.status in ENDED_UNFINISHED:
                record.collected = True
                record.save(self.path)
                raise LLMError(self._ended_unfinished(batch, len(final), len(record.lines)))
            if not reasks:
                record.collected = True
                record.save(self.path)
                return
            lines = [line for line, _ in reasks]
            record = await self._submit(lines, {line.custom_id: body for line, body in reasks}, record.round + 1,
                                        record.batch_ids)  # fmt: skip

    def _sent_bodies(self, record: BatchRecord) -> dict[str, dict[str, Any]]:
        """The chat bodies this batch sent, from the local copy of its input file ({} if it is gone)."""
        path = self.path.parent / INPUT_FILE
        if self.client.endpoint.style is PromptStyle.completion or not path.exists():
            return {}
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if rows and rows[0].get("input_file_id") == record.input_file_id:
            return {str(row["custom_id"]): row["body"] for row in rows[1:]}
        return {}

    def _read(self, line: BatchLine, result: dict[str, Any] | None, error: dict[str, Any] | None,
              bodies: dict[str, dict[str, Any]], record: BatchRecord) -> tuple[LLMAnswer | None, dict[str, Any] | None]:  # fmt: skip
        """One line's answer, and the re-ask body when it failed validation."""
        response = (result or {}).get("response") or {}
        if result is not None and response.get("status_code") == 200 and isinstance(response.get("body"), dict):
            parsed = parse_answer(self.client, bodies.get(line.custom_id, {}), response["body"], line.style)
            if not parsed.invalid:
                return parsed.answer, None
            if self.client.endpoint.style is PromptStyle.completion and line.key in self.by_key:
                # the live path re-samples the same prompt
                return parsed.answer, request_body(self.client, self.by_key[line.key][0].text, line.style)
            return parsed.answer, parsed.reask_body
        failed = error or result
        if failed is None:
            return None, None
        cause = _line_failure(failed)
        self.client.failures[cause] += 1
        if cause.startswith("batch_expired") or cause.startswith("batch_cancelled"):
            return None, None
        return LLMAnswer(usage=Usage(requests=1), failure=f"llm_error: {cause} in batch {record.batch_id}"), None

    async def _commit(self, final: list[tuple[BatchLine, LLMAnswer]]) -> None:
        """Final answers through :func:`generate_pairs`: the live path's checks, rejects and commit log."""
        if not final:
            return
        answers: dict[tuple[str, str], collections.deque] = collections.defaultdict(collections.deque)
        chunks = []
        for line, answer in final:
            if line.key not in self.by_key:
                continue  # a chunk no longer in this run (documents changed since the batch was sent)
            chunk, _ = self.by_key[line.key]
            answers[(chunk.text, line.style)].append(answer)
            chunks.append(chunk)
            self.answered.add(line.key)
        part = GenerationReport()
        try:
            await generate_pairs(chunks, cast(LLMClient, _Answered(self.client, answers)), self.checker, self.store,
                                 self.config, resume=self.resume, report=part)  # fmt: skip
        except LLMError as error:
            if part.chunks_done or not str(error).startswith("every request failed"):
                raise
            # every line of this part failed: committed (not done); the end of the run decides
        finally:
            _merge(self.report, part)

    def _ended_unfinished(self, batch: Any, kept: int, total: int) -> str:
        detail = ""
        errors = getattr(getattr(batch, "errors", None), "data", None) or []
        if errors:
            detail = f" ({first_line(errors[0].message or errors[0].code, 160)})"
        return (
            f"batch {batch.id} at {self.url} ended {batch.status}{detail}: {kept} of {total} request(s) answered and "
            'kept; run the same command again to send the rest in a new batch, or set llm.mode = "live"'
        )


def split_batches(
    lines: list[BatchLine], bodies: dict[str, dict[str, Any]], max_requests: int, max_bytes: int = MAX_BATCH_BYTES
) -> list[list[BatchLine]]:
    """``lines`` cut into batches of at most ``max_requests`` lines and about ``max_bytes`` of JSONL, in order."""
    parts: list[list[BatchLine]] = []
    current: list[BatchLine] = []
    size = 0
    for line in lines:
        line_bytes = len(json.dumps(bodies[line.custom_id], ensure_ascii=False).encode()) + 200
        if current and (len(current) >= max_requests or size + line_bytes > max_bytes):
            parts.append(current)
            current, size = [], 0
        current.append(line)
        size += line_bytes
    if current:
        parts.append(current)
    return parts


def estimated_cost(usage: Usage, batch: BatchRun | None, config: Any) -> float | None:
    """USD for ``usage`` (all of a run's tokens), the batch lines' share at ``llm.batch_price_factor``.

    None when no price is set. Live calls in a batch run (the judge) keep the live price.
    """
    if batch is None:
        return usage.cost_usd(config)
    live = usage.minus(batch.usage).cost_usd(config)
    batched = batch.usage.cost_usd(config)
    if live is None or batched is None:
        return None
    return round(live + batched * config.batch_price_factor, 6)


def _line_failure(row: dict[str, Any]) -> str:
    """A failed line's cause, key-free and short: ``HTTP 500``, ``batch_expired``, ``server_error: ...``."""
    response = row.get("response") or {}
    if response.get("status_code"):
        return f"HTTP {response['status_code']}"
    error = row.get("error") or {}
    return str(error.get("code") or "error") if error else "no answer"


def _merge(total: GenerationReport, part: GenerationReport) -> None:
    total.chunks_done += part.chunks_done
    total.chunks_failed += part.chunks_failed
    total.pairs += part.pairs
    total.pairs_by_style.update(part.pairs_by_style)
    total.rejects.update(part.rejects)
    total.judge_usage.add(part.judge_usage)
    total.seconds += part.seconds
