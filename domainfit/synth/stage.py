"""The synth stage: :func:`run_synth` and what it reports, :class:`SynthResult`.

It wires the parts together (documents -> chunks -> LLM -> filters -> store); each
part lives in its own module and is usable alone.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import Chunk, RunDir, stage_run, write_chunks
from ..config import RunConfig
from ..errors import DocumentError
from .chunking import chunk_documents, is_llm_eligible, load_tokenizer
from .documents import load_documents
from .filters import DuplicateFilter, RoundTripChecker
from .generate import AnswerChecker, GenerationReport, failure_causes, generate_pairs
from .batch import BatchRun, estimated_cost, generate_pairs_in_batches
from .llm import Endpoint, LLMClient, Usage, open_endpoint
from .prompts import PROMPT_VERSION
from .store import SynthStore


@dataclass
class SynthResult:
    """What a synth run did; ``summary()`` is what the CLI prints.

    ``generation`` holds the LLM half's counts (this run's pairs, rejects by reason,
    token usage); the fields here describe the documents and chunks.
    """

    run: RunDir
    documents: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    chunks: int = 0
    eligible: int = 0
    generation: GenerationReport = field(default_factory=GenerationReport)
    pairs_total: int = 0
    cost_usd: float | None = None
    batch: BatchRun | None = None
    """Set in ``llm.mode = "batch"``: the batches polled and what their lines cost."""
    batch_price_factor: float = 1.0
    endpoint: str = ""
    token_budget: int | None = None
    seconds: float = 0.0

    @property
    def pairs(self) -> int:
        """Pairs accepted in this run."""
        return self.generation.pairs

    @property
    def rejects(self) -> dict[str, int]:
        """Rejects written in this run, by reason."""
        return dict(self.generation.rejects)

    @property
    def usage(self) -> Usage:
        return self.generation.usage

    @property
    def chunks_done(self) -> int:
        """Eligible chunks finished, in this run and earlier ones."""
        return self.generation.already_done + self.generation.chunks_done

    @property
    def complete(self) -> bool:
        """Every eligible chunk is finished (nothing to resume)."""
        return self.chunks_done >= self.eligible

    def counts(self) -> dict[str, Any]:
        """Counts for ``manifest.json``'s synth stage."""
        counts: dict[str, Any] = {
            "documents": self.documents,
            "skipped_files": len(self.skipped),
            "chunks": self.chunks,
            "eligible_chunks": self.eligible,
            "chunks_done": self.chunks_done,
            "chunks_done_this_run": self.generation.chunks_done,
            "chunks_failed": self.generation.chunks_failed,
            "pairs_accepted": self.pairs,
            "pairs_by_style": dict(self.generation.pairs_by_style),
            "pairs_total": self.pairs_total,
            "rejects": self.rejects,
            **self.usage.counts(),
            "failed_attempts": dict(self.generation.failed_attempts.most_common()),
            "complete": self.complete,
        }
        if self.cost_usd is not None:
            counts["estimated_cost_usd"] = self.cost_usd
        judge = self.generation.judge_usage
        if judge.requests:
            counts.update(judge_requests=judge.requests, judge_prompt_tokens=judge.prompt_tokens,
                          judge_completion_tokens=judge.completion_tokens)  # fmt: skip
        if self.batch is not None:
            counts["batch_requests"] = self.batch.usage.requests
            counts["batch_polls"] = self.batch.polls
        return counts

    def summary(self) -> str:
        generation = self.generation
        skipped = ""
        if self.skipped:
            listed = "; ".join(f"{source}: {reason}" for source, reason in list(self.skipped.items())[:5])
            more = f"; +{len(self.skipped) - 5} more" if len(self.skipped) > 5 else ""
            skipped = f" ({len(self.skipped)} skipped — {listed}{more})"
        reasons = ", ".join(f"{reason} {count}" for reason, count in generation.rejects.most_common())
        by_style = ""
        if set(generation.pairs_by_style) - {"question"}:
            by_style = " [" + ", ".join(f"{style} {n}" for style, n in sorted(generation.pairs_by_style.items())) + "]"
        usage = self.usage
        failed = failure_causes(generation.failed_attempts)
        failed = f" ({failed})" if failed else ""
        cost = f", est. ${self.cost_usd:.4f}" if self.cost_usd is not None else ""
        batch = ""
        if self.batch is not None:
            ids = ", ".join(self.batch.batch_ids) or "none"
            resumed = f", resumed {self.batch.resumed}" if self.batch.resumed else ""
            batch = f" in batch {ids} ({self.batch.polls} polls{resumed})"
            if self.cost_usd is not None:
                cost += f" at the batch price ({self.batch_price_factor:g} x live)"
        lines = [
            f"synth: {self.documents} documents{skipped}, {self.chunks} chunks, {self.eligible} eligible for questions",
            f"  chunks done: {self.chunks_done}/{self.eligible}"
            + (f" ({generation.already_done} already done before this run)" if generation.already_done else "")
            + (f"; {generation.chunks_failed} failed and will be retried on the next run" if generation.chunks_failed else ""),
            f"  pairs: {self.pairs} accepted{by_style} ({self.pairs_total} in pairs.jsonl); "
            f"rejected: {sum(generation.rejects.values())}" + (f" ({reasons})" if reasons else ""),
            f"  LLM: {self.endpoint}{batch}: {usage.requests} requests, {usage.retries} retries{failed}, {usage.reasks} re-asks, "
            f"{usage.prompt_tokens:,} prompt + {usage.completion_tokens:,} completion tokens{cost}",
        ]
        if generation.stopped == "token_budget":
            lines.append(
                f"  stopped: token budget of {self.token_budget:,} reached; finished chunks are saved — "
                "run the same command again to continue"
            )
        lines.append(f"  wrote {self.run.chunks}, {self.run.pairs.name}, {self.run.rejected.name} in {self.seconds:.1f}s")
        return "\n".join(lines)


def _encoder(config: RunConfig, progress: bool):
    """The base model's encode function for near-duplicate checks, loaded once."""
    from ..models import load_model

    if not progress:  # transformers draws a "Loading weights" bar of its own
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    model = load_model(config.base_model, allow_downloads=config.allow_downloads)

    def encode(texts: list[str]):
        return model.encode(texts, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)

    return encode


def _roundtrip_checker(chunks: list[Chunk], config: RunConfig, encode) -> RoundTripChecker | None:
    """The round-trip check over every chunk of the run, or None when ``synth.roundtrip`` is off."""
    if not config.synth.roundtrip_on:
        return None
    if config.synth.roundtrip == "embedding":
        return RoundTripChecker(chunks, config.synth.roundtrip_top_k, encode=encode)
    return RoundTripChecker(chunks, config.synth.roundtrip_top_k)


def spread_across_documents(chunks: list[Chunk], limit: int) -> list[Chunk]:
    """Up to ``limit`` chunks taken round-robin over documents, in document order.

    ``synth.max_chunks`` uses this so a short trial still covers every document,
    which a split by document needs.

    Example::

        spread_across_documents(chunks, 3)   # first chunk of documents A, B, C
    """
    by_document: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        by_document.setdefault(chunk.doc_id, []).append(chunk)
    queues = list(by_document.values())
    picked: list[Chunk] = []
    depth = 0
    while len(picked) < limit and any(depth < len(queue) for queue in queues):
        picked += [queue[depth] for queue in queues if depth < len(queue)][: limit - len(picked)]
        depth += 1
    return picked


def run_synth(docs: str | Path, run: RunDir, config: RunConfig, *, progress: bool = True) -> SynthResult:
    """Turn a document folder into ``chunks.parquet``, ``pairs.jsonl`` and ``rejected.jsonl``.

    Resumable: re-running with the same settings skips finished chunks and never
    duplicates a pair. Counts and token usage go into ``manifest.json`` (the API key
    never does). Raises :class:`~domainfit.errors.DocumentError` for an unusable
    folder and :class:`~domainfit.errors.LLMError` when the LLM cannot be reached.

    Example::

        result = run_synth("data/sample", RunDir("runs/demo"), load_config())
        print(result.summary())
    """
    started = time.perf_counter()
    if not Path(docs).exists():  # before anything is written: a typo must not leave a run directory behind
        raise DocumentError(f"document folder not found: {docs}")
    run = RunDir(run.root if isinstance(run, RunDir) else run).ensure()
    result = SynthResult(run=run, token_budget=config.synth.token_budget)
    report = result.generation
    with stage_run(run, "synth", config_hash=config.stage_hash("synth")) as record:
        loaded = load_documents(Path(docs), config.synth, progress=progress)
        result.documents = len(loaded.documents)
        result.skipped = loaded.skip_reasons()
        tokenizer = load_tokenizer(config.base_model, allow_downloads=config.allow_downloads)
        chunks = chunk_documents(loaded.documents, tokenizer, config.synth, progress=progress)
        write_chunks(run.chunks, chunks)
        eligible = [chunk for chunk in chunks if is_llm_eligible(chunk, config.synth)]
        if config.synth.max_chunks is not None:
            eligible = spread_across_documents(eligible, config.synth.max_chunks)
        result.chunks, result.eligible = len(chunks), len(eligible)

        store = SynthStore(run)
        state = store.recover()
        store.ensure_files()
        encode = _encoder(config, progress)
        duplicates = DuplicateFilter(encode, config.synth.near_duplicate_cosine)
        duplicates.add_many(state.queries)
        roundtrip = _roundtrip_checker(chunks, config, encode)
        checker = AnswerChecker(
            config.synth,
            lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"]),
            duplicates,
            roundtrip=roundtrip,
            existing_pair_ids=state.pair_ids,
        )
        record.details = {
            "prompt_version": PROMPT_VERSION,
            "query_styles": list(config.synth.query_styles),
            "query_style_mix": config.synth.query_style_mix,
            "skipped": result.skipped,
            "base_url": config.llm.base_url or "local",
        }
        try:
            with open_endpoint(config.llm) as endpoint:
                result.endpoint = endpoint.label
                record.details.update(
                    model=endpoint.model,
                    prompt_style=endpoint.style.value,
                    temperature=endpoint.temperature,
                    max_tokens=endpoint.max_tokens,
                    max_concurrency=endpoint.max_concurrency,
                )
                if config.llm.mode == "batch":
                    result.batch = BatchRun()
                    result.batch_price_factor = config.llm.batch_price_factor
                asyncio.run(_generate(eligible, endpoint, checker, store, config, state, progress, report, result))
        finally:
            result.seconds = time.perf_counter() - started
            result.cost_usd = estimated_cost(report.usage, result.batch, config.llm)
            if result.batch is not None:
                record.details["batch"] = {
                    "batch_ids": result.batch.batch_ids,
                    "resumed": result.batch.resumed,
                    "price_factor": config.llm.batch_price_factor,
                }
            result.pairs_total = _count_lines(run.pairs)
            record.counts = result.counts()
            record.details["stopped"] = report.stopped
    return result


async def _generate(
    eligible: list[Chunk], endpoint: Endpoint, checker: AnswerChecker, store: SynthStore, config: RunConfig,
    state, progress: bool, report: GenerationReport, result: SynthResult,
) -> None:
    seed = config.llm.local_seed if endpoint.local else None
    async with LLMClient(endpoint, config.llm, questions_per_chunk=config.synth.questions_per_chunk, seed=seed) as client:
        if result.batch is not None:
            await generate_pairs_in_batches(
                eligible, client, checker, store, config, result.run, resume=state, progress=progress, report=report,
                outcome=result.batch,
            )
        else:
            await generate_pairs(eligible, client, checker, store, config, resume=state, progress=progress, report=report)


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())
