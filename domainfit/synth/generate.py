"""Asynchronous question generation: concurrency, validation, resume and accounting.

:func:`generate_pairs` sends every eligible chunk that is not finished yet to the
LLM (``llm.max_concurrency`` workers; the client bounds requests in flight),
checks each returned question in one place (:class:`AnswerChecker`: well-formed,
not a prompt example, grounded, not a copy, self-contained, the round trip and
the optional LLM judge, then deduplicated against the whole run), and hands each chunk's pairs and rejects to a single
committer task that appends them in batches (one fsync per file per batch, in a
worker thread) before marking the chunks done. A chunk's resume key
(:func:`chunk_key`) hashes the chunk id with the prompt version, model and the
settings that change the answer, so a re-run skips exactly the finished work.

It stops cleanly when ``synth.token_budget`` is reached (in-flight chunks finish
and are saved), fails fast with :class:`~domainfit.errors.LLMError` when the
first chunks all find nothing listening at the endpoint, and ends with one when
no chunk of the run got an answer (``every request failed: HTTP 503 x 12``), so a
dead endpoint is an error, not an empty success.

Example::

    report = await generate_pairs(eligible, client, checker, store, cfg, resume=state)
    print(report.pairs, report.rejects)
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

from ..artifacts import Chunk, Pair, Reject, content_hash, pair_id_for
from ..config import RunConfig, SynthConfig
from ..errors import LLMError
from . import filters
from .llm import LLMAnswer, LLMClient, Usage, answer_json
from .prompts import PROMPT_VERSION
from .schema import GeneratedQuestion
from .styles import pick_style
from .store import ChunkOutcome, ResumeState, SynthStore

UNREACHABLE_CHUNKS = 3
"""Fail fast after this many chunks in a row found the endpoint refusing connections."""

LLM_ERROR = "llm_error"
JUDGE_LOW_SCORE = "judge_low_score"
JUDGE_FAILED = "judge_failed"


def chunk_key(chunk_id: str, client: LLMClient, query_style: str = "question") -> str:
    """The resume key: chunk id + prompt version + model + the settings that change the answer.

    The query style joins the key only when it is not ``question``, so runs from
    before styles existed resume where they stopped.
    """
    parts = [
        chunk_id,
        PROMPT_VERSION,
        client.endpoint.model,
        client.endpoint.style.value,
        repr(client.endpoint.temperature),
        str(client.questions_per_chunk),
        str(client.endpoint.max_tokens),
    ]
    if query_style != "question":
        parts.append(f"query_style={query_style}")
    return content_hash(*parts)


def generator_record(client: LLMClient) -> dict[str, str]:
    """What ``Pair.generator`` says about where a question came from."""
    return {"model": client.endpoint.model, "prompt_version": PROMPT_VERSION, "prompt_style": client.endpoint.style.value}


def reason_group(reason: str) -> str:
    """``'llm_error: timeout after 6 attempt(s)'`` -> ``'llm_error'``: the key rejects are counted by."""
    return reason.split(":", 1)[0].strip()


# --------------------------------------------------------------------------- checking


@dataclass
class Candidate:
    """A question that passed the stateless checks, with its scores."""

    item: GeneratedQuestion
    checks: dict
    style: str = "question"


class AnswerChecker:
    """The one place where generated questions are judged, in a fixed order.

    1. :func:`filters.check_pair` (well-formed, not a prompt example, grounded, not a
       copy, self-contained), stateless;
    2. duplicate / near-duplicate against the run so far (:class:`filters.DuplicateFilter`);
    3. the round trip over all chunks (``synth.roundtrip``, ``synth.roundtrip_top_k``);
    4. optional LLM judge (``synth.judge``; async, done by the caller between
       :meth:`screen` and :meth:`admit`);
    5. :meth:`admit` re-checks duplicates (another chunk may have won the race
       during the judge call), remembers the question, and makes the pair.

    Example::

        checker = AnswerChecker(cfg.synth, count_tokens, DuplicateFilter(None, 0.95))
        candidates, rejects = checker.screen(chunk, answer.questions)
        pairs, more_rejects = checker.admit(chunk, candidates, generator)
    """

    def __init__(
        self,
        config: SynthConfig,
        count_tokens: Callable[[str], int],
        duplicates: filters.DuplicateFilter,
        *,
        roundtrip: filters.RoundTripChecker | None = None,
        existing_pair_ids: set[str] | None = None,
    ):
        self.config = config
        self.count_tokens = count_tokens
        self.duplicates = duplicates
        self.roundtrip = roundtrip
        self.pair_ids = set(existing_pair_ids or ())

    def screen(
        self, chunk: Chunk, items: Sequence[GeneratedQuestion], style: str = "question"
    ) -> tuple[list[Candidate], list[Reject]]:
        """Stateless checks (for the query ``style``), duplicates and round trip; nothing is remembered yet."""
        candidates: list[Candidate] = []
        rejects: list[Reject] = []
        for item in items:
            n_tokens = self.count_tokens(item.question)
            reason = filters.check_pair(item.question, item.evidence, chunk.text, n_tokens, self.config, style)
            reason = reason or self.duplicates.check(item.question)
            rank = None
            if reason is None and self.roundtrip is not None:
                rank = self.roundtrip.rank(item.question, chunk.chunk_id)
                reason = None if rank is not None else filters.ROUNDTRIP_MISS
            if reason is not None:
                rejects.append(_reject(chunk, item, reason, style))
                continue
            checks = {
                "well_formed": True,
                "question_tokens": n_tokens,
                "grounding": round(filters.grounding_ratio(item.evidence, chunk.text), 4),
                "copy_overlap": round(filters.copy_overlap(item.question, chunk.text, self.config.copy_ngram), 4),
                "not_duplicate": True,
            }
            if rank is not None:
                checks["roundtrip_rank"] = rank
            candidates.append(Candidate(item, checks, style))
        return candidates, rejects

    def admit(self, chunk: Chunk, candidates: Sequence[Candidate], generator: dict) -> tuple[list[Pair], list[Reject]]:
        """Final duplicate check, then remember each question and make its pair."""
        pairs: list[Pair] = []
        rejects: list[Reject] = []
        for candidate in candidates:
            question = candidate.item.question
            pair_id = pair_id_for(chunk.chunk_id, question)
            reason = self.duplicates.check(question)
            if reason is None and pair_id in self.pair_ids:
                reason = filters.DUPLICATE
            if reason is not None:
                rejects.append(_reject(chunk, candidate.item, reason, candidate.style))
                continue
            self.duplicates.add(question)
            self.pair_ids.add(pair_id)
            pairs.append(
                Pair(
                    pair_id=pair_id,
                    chunk_id=chunk.chunk_id,
                    query=question,
                    evidence=candidate.item.evidence,
                    generator=generator,
                    checks=candidate.checks,
                    style=candidate.style,
                )
            )
        return pairs, rejects


def _reject(chunk: Chunk, item: GeneratedQuestion, reason: str, style: str | None = None) -> Reject:
    return Reject(chunk_id=chunk.chunk_id, reason=reason, raw=answer_json(item), query=item.question, style=style)


# --------------------------------------------------------------------------- the run


@dataclass
class GenerationReport:
    """What one call of :func:`generate_pairs` did."""

    chunks: int = 0
    already_done: int = 0
    chunks_done: int = 0
    chunks_failed: int = 0
    pairs: int = 0
    pairs_by_style: collections.Counter = field(default_factory=collections.Counter)
    rejects: collections.Counter = field(default_factory=collections.Counter)
    usage: Usage = field(default_factory=Usage)
    judge_usage: Usage = field(default_factory=Usage)
    """The LLM judge's share of ``usage`` (``synth.judge``), summed over the judged questions."""
    failed_attempts: collections.Counter = field(default_factory=collections.Counter)
    """This run's failed HTTP attempts by cause (``timeout``, ``HTTP 503``, ...): why ``usage.retries``."""
    stopped: str | None = None
    seconds: float = 0.0


class _Progress:
    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="synth", unit="chunk", dynamic_ncols=True)

    def update(self, chunks: int, report: GenerationReport, usage: Usage) -> None:
        if self.bar is not None:
            self.bar.set_postfix(
                pairs=report.pairs, rejects=sum(report.rejects.values()), tokens=usage.total_tokens, refresh=False
            )
            self.bar.update(chunks)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


async def _commit_loop(queue: asyncio.Queue, store: SynthStore, on_commit: Callable[[list[ChunkOutcome]], None]) -> None:
    """Group commit: whatever finished while the last batch was being fsynced goes in the next."""
    while True:
        outcome = await queue.get()
        batch = [] if outcome is None else [outcome]
        finished = outcome is None
        while not queue.empty():
            extra = queue.get_nowait()
            if extra is None:
                finished = True
            else:
                batch.append(extra)
        if batch:
            await asyncio.to_thread(store.commit, batch)
            on_commit(batch)
        if finished:
            return


async def generate_pairs(
    chunks: Sequence[Chunk],
    client: LLMClient,
    checker: AnswerChecker,
    store: SynthStore,
    config: RunConfig,
    *,
    resume: ResumeState | None = None,
    progress: bool = False,
    report: GenerationReport | None = None,
) -> GenerationReport:
    """Ask the LLM about every chunk not finished yet; validate, append and mark each done.

    ``chunks`` should already be the LLM-eligible ones. Returns a
    :class:`GenerationReport`; ``report.stopped`` says why it stopped early (token
    budget). Raises :class:`~domainfit.errors.LLMError` when the endpoint cannot be
    reached or rejects the configuration (key, model); pass ``report`` to keep the
    counts of what was committed before such an error.
    """
    started = time.perf_counter()
    resume = resume or ResumeState()
    report = report if report is not None else GenerationReport()
    report.chunks = len(chunks)
    todo: list[tuple[Chunk, str, str]] = []
    for chunk in chunks:
        style = pick_style(chunk.chunk_id, config.synth.query_styles, config.synth.query_style_mix)
        key = chunk_key(chunk.chunk_id, client, style)
        if key in resume.done_keys:
            report.already_done += 1
        else:
            todo.append((chunk, key, style))
    generation = _Generation(todo, client, checker, config, report, progress)
    try:
        await generation.run(store)
    finally:
        report.usage = client.usage.minus(generation.usage_before)
        report.failed_attempts = client.failures - generation.failures_before
        report.seconds = time.perf_counter() - started
    if report.chunks_failed and not report.chunks_done and report.stopped is None:  # every commit is in by now
        raise LLMError(every_request_failed(client.failures, report.chunks_failed, client.endpoint.base_url))
    return report


class _Generation:
    """One :func:`generate_pairs` call: workers ask the LLM chunk by chunk, one committer appends.

    Workers share the queue of chunks to do (chunk, resume key, query style), the
    count of connection refusals in a row (to fail fast when nothing listens) and the
    token budget; finished chunks go through ``queue`` to :func:`_commit_loop`, whose
    callback updates ``report``.
    """

    def __init__(
        self,
        todo: list[tuple[Chunk, str, str]],
        client: LLMClient,
        checker: AnswerChecker,
        config: RunConfig,
        report: GenerationReport,
        progress: bool,
    ):
        self.todo = todo
        self.client = client
        self.checker = checker
        self.config = config
        self.report = report
        self.generator = generator_record(client)
        self.bar = _Progress(len(todo), progress)
        self.pending: Iterator[tuple[Chunk, str, str]] = iter(todo)
        self.refused_in_a_row = 0
        self.queue: asyncio.Queue = asyncio.Queue()
        self.usage_before = client.usage.copy()
        self.failures_before = collections.Counter(client.failures)

    async def run(self, store: SynthStore) -> None:
        committer = asyncio.create_task(_commit_loop(self.queue, store, self.on_commit))
        width = max(1, min(self.client.endpoint.max_concurrency, len(self.todo)))
        workers = [asyncio.create_task(self.worker()) for _ in range(width)]
        try:
            running = set(workers)
            while running:
                # the committer is watched too: if appending fails (disk full), stop asking the LLM
                done, _ = await asyncio.wait(running | {committer}, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # re-raises a worker's or the committer's error
                running -= done
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await self.queue.put(None)
            try:
                await committer
            finally:
                self.bar.close()

    def on_commit(self, batch: list[ChunkOutcome]) -> None:
        for outcome in batch:
            self.report.pairs += len(outcome.pairs)
            self.report.pairs_by_style.update(pair.style for pair in outcome.pairs)
            self.report.rejects.update(reason_group(reject.reason) for reject in outcome.rejects)
            if outcome.done:
                self.report.chunks_done += 1
            else:
                self.report.chunks_failed += 1
        self.bar.update(len(batch), self.report, self.client.usage)

    def budget_spent(self) -> bool:
        budget = self.config.synth.token_budget
        return budget is not None and self.client.usage.total_tokens - self.usage_before.total_tokens >= budget

    async def process(self, chunk: Chunk, key: str, style: str) -> tuple[ChunkOutcome, bool]:
        """One chunk's outcome, and whether its request found nothing listening."""
        answer: LLMAnswer = await self.client.write_questions(chunk.text, style)
        if answer.failure is not None:
            reject = Reject(chunk_id=chunk.chunk_id, reason=answer.failure, raw=answer.raw, style=style)
            done = reason_group(answer.failure) != LLM_ERROR  # a failed request may heal: ask again next run
            return ChunkOutcome(chunk.chunk_id, key, done, [], [reject]), answer.refused
        candidates, rejects = self.checker.screen(chunk, answer.questions, style)
        synth = self.config.synth
        if synth.judge and candidates:
            candidates, judge_usage = await _judge(chunk, candidates, rejects, self.client, synth.judge_min_score)
            self.report.judge_usage.add(judge_usage)
        pairs, late_rejects = self.checker.admit(chunk, candidates, self.generator)
        return ChunkOutcome(chunk.chunk_id, key, True, pairs, rejects + late_rejects), False

    async def worker(self) -> None:
        for chunk, key, style in self.pending:
            if self.budget_spent():
                self.report.stopped = "token_budget"
                return
            outcome, refused = await self.process(chunk, key, style)
            self.refused_in_a_row = self.refused_in_a_row + 1 if refused and not self.client.ever_answered else 0
            await self.queue.put(outcome)
            if self.refused_in_a_row >= UNREACHABLE_CHUNKS:
                raise LLMError(
                    f"cannot reach the LLM at {self.client.endpoint.base_url}: connection refused for the first "
                    f"{self.refused_in_a_row} chunks; is the server running? (--llm-base-url / llm.base_url)"
                )


def failure_causes(failures: collections.Counter) -> str:
    """Failed attempts by cause, most frequent first: ``HTTP 429 x 2, timeout x 1`` ('' when none)."""
    return ", ".join(f"{cause} x {count}" for cause, count in failures.most_common())


def every_request_failed(failures: collections.Counter, chunks: int, url: str) -> str:
    """The one line for a run in which no request came back: ``every request failed: HTTP 503 x 12 ...``."""
    causes = failure_causes(failures) or "no answer"
    return (
        f"every request failed: {causes} ({chunks} chunk(s), none answered; they are asked again on the next run); "
        f"is the LLM at {url} up? (llm.base_url, llm.timeout_s)"
    )


async def _judge(
    chunk: Chunk, candidates: list[Candidate], rejects: list[Reject], client: LLMClient, min_score: int
) -> tuple[list[Candidate], Usage]:
    """Keep the candidates the LLM judge scores at least ``min_score``; reject the rest. Also: what judging cost."""
    scores = await asyncio.gather(*(client.judge(chunk.text, c.item.question) for c in candidates))
    kept = []
    spent = Usage()
    for candidate, (score, usage) in zip(candidates, scores):
        spent.add(usage)
        if score is None:
            rejects.append(_reject(chunk, candidate.item, JUDGE_FAILED, candidate.style))
        elif score.score < min_score:
            rejects.append(_reject(chunk, candidate.item, JUDGE_LOW_SCORE, candidate.style))
        else:
            candidate.checks["judge_score"] = score.score
            kept.append(candidate)
    return kept, spent
