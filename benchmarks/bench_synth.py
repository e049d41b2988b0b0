"""Throughput of synth's generation loop against a scripted server with a fixed latency.

The scripted OpenAI-protocol server (``domainfit/testing.py``, run in its own
process so it does not share the GIL with the client) answers every request after
``--latency`` seconds with two grounded questions. For each concurrency the real
pipeline runs over the same synthetic chunks: ``openai.AsyncOpenAI`` + instructor
(tools mode), retries, the validation filters (exact dedup; the near-duplicate
embedding is off so the model's encoding time does not hide the concurrency),
and the fsynced group commits to ``pairs.jsonl`` / ``synth_done.jsonl``.

Printed per concurrency: pairs/second, the speed-up over concurrency 1 (sequential
generation), the ratio to the server's own maximum rate (``concurrency /
latency`` requests per second, two pairs each), and the client's CPU time per
request (this process, all threads: what bounds high concurrency on a small
machine). Goal: >= 10x sequential at 16. On a shared machine the wall-clock
ratios move with the load (printed with the results): ``--repeat N`` runs every
level N times, alternating, and reports the median.

Run::

    .venv/bin/python benchmarks/bench_synth.py            # 200 chunks at 1, 4, 16, 64
    .venv/bin/python benchmarks/bench_synth.py --quick    # 100 chunks at 1, 16
    .venv/bin/python benchmarks/bench_synth.py --concurrency 1,16 --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

VOCABULARY = (
    "turbine generator penstock intake governor bearing gasket valve sensor controller firmware inverter "
    "transformer breaker cable trench culvert spillway weir tailrace runner shaft coupling brake alarm "
    "battery charger logger antenna gateway modem router badge laptop invoice receipt budget forecast "
    "contract warranty tariff permit licence audit policy training course certificate canteen parking "
    "ladder harness helmet glove lantern radio vehicle trailer crane hoist pallet forklift warehouse depot "
    "courier supplier customer engineer technician manager director auditor inspector apprentice planner"
).split()
ADJECTIVES = (
    "annual monthly weekly daily remote manual automatic spare urgent routine northern southern eastern "
    "western primary secondary hydraulic electrical mechanical digital portable temporary permanent"
).split()


def synthetic_chunks(count: int, seed: int = 7):
    """``count`` distinct chunks of three sentences, each with a ``ZX-`` marker."""
    from domainfit.artifacts import Chunk, content_hash

    rng = random.Random(seed)
    chunks = []
    for index in range(count):
        sentences = []
        for _ in range(3):
            a, b, c, d = rng.sample(VOCABULARY, 4)
            x, y = rng.sample(ADJECTIVES, 2)
            sentences.append(f"The {x} {a} {b} needs a {y} {c} check before every {d} visit.")
        text = f"ZX-B{index:05d}\n\n" + " ".join(sentences)
        chunks.append(
            Chunk(chunk_id=content_hash("bench", text), doc_id=f"doc{index}", source=f"doc{index}.txt",
                  text=text, char_start=0, char_end=len(text), n_tokens=len(text.split()))
        )  # fmt: skip
    return chunks


def _serve(latency_s: float, ports: multiprocessing.Queue, stop: multiprocessing.Event) -> None:
    from domainfit.testing import OpenAIStub

    with OpenAIStub(latency_s=latency_s) as stub:
        ports.put(stub.base_url)
        stop.wait()


async def _generate_once(chunks, base_url: str, concurrency: int, run_root: Path, count_tokens):
    from domainfit.artifacts import RunDir
    from domainfit.config import load_config
    from domainfit.synth.filters import DuplicateFilter
    from domainfit.synth.generate import AnswerChecker, generate_pairs
    from domainfit.synth.llm import Endpoint, LLMClient
    from domainfit.synth.store import SynthStore

    config = load_config(
        overrides={"llm.base_url": base_url, "llm.model": "stub", "llm.max_concurrency": concurrency},
        environ={},
    )
    store = SynthStore(RunDir(run_root).ensure())
    checker = AnswerChecker(config.synth, count_tokens, DuplicateFilter(None, config.synth.near_duplicate_cosine))
    async with LLMClient(Endpoint.remote(config.llm, base_url, "stub"), config.llm, questions_per_chunk=2) as client:
        started, cpu = time.perf_counter(), time.process_time()
        report = await generate_pairs(chunks, client, checker, store, config, resume=store.recover())
        return report, time.perf_counter() - started, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=200, help="chunks per concurrency level")
    parser.add_argument("--latency", type=float, default=0.05, help="server latency per request, seconds")
    parser.add_argument("--concurrency", type=str, default="1,4,16,64", help="comma-separated levels")
    parser.add_argument("--quick", action="store_true", help="100 chunks at concurrency 1 and 16")
    parser.add_argument("--repeat", type=int, default=1, help="runs per level (alternating); the median is shown")
    args = parser.parse_args(argv)
    levels = [int(level) for level in args.concurrency.split(",")]
    chunk_count = args.chunks
    if args.quick:
        levels, chunk_count = [1, 16], 100

    from domainfit.synth.chunking import load_tokenizer

    tokenizer = load_tokenizer("minilm")

    def count_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    chunks = synthetic_chunks(chunk_count)
    context = multiprocessing.get_context("spawn")
    ports, stop = context.Queue(), context.Event()
    server = context.Process(target=_serve, args=(args.latency, ports, stop), daemon=True)
    server.start()
    base_url = ports.get(timeout=120)
    runs: dict[int, list[tuple[int, float, float]]] = {level: [] for level in levels}
    loads = [os.getloadavg()[0]]
    try:
        asyncio.run(_generate_once(chunks[:4], base_url, 4, Path(tempfile.mkdtemp()), count_tokens))  # warm-up
        for _ in range(max(1, args.repeat)):
            for level in levels:
                with tempfile.TemporaryDirectory() as folder:
                    report, seconds, cpu = asyncio.run(_generate_once(chunks, base_url, level, Path(folder), count_tokens))
                runs[level].append((report.pairs, seconds, cpu / max(1, len(chunks))))
            loads.append(os.getloadavg()[0])
    finally:
        stop.set()
        server.join(timeout=10)

    # per level: the median run (by seconds); pairs are the same in every run
    rows = [(level, statistics.median(r[0] for r in runs[level]), statistics.median(r[1] for r in runs[level]),
             statistics.median(r[2] for r in runs[level])) for level in levels]  # fmt: skip
    base_rate = rows[0][1] / rows[0][2] if rows and rows[0][0] == 1 else None
    print(f"synth generation: {chunk_count} chunks, server latency {args.latency * 1000:.0f} ms, 2 questions/chunk, "
          f"{os.cpu_count()} CPUs, load average {min(loads):.1f}-{max(loads):.1f}"
          + (f", median of {args.repeat} runs" if args.repeat > 1 else ""))  # fmt: skip
    header = (f"{'concurrency':>11} {'pairs':>6} {'seconds':>8} {'pairs/s':>8} {'vs seq':>7} {'server max pairs/s':>19} "
              f"{'of max':>7} {'client CPU ms/req':>18}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for level, pairs, seconds, cpu_per_request in rows:
        rate = pairs / seconds
        server_max = 2 * level / args.latency
        speedup = f"{rate / base_rate:6.1f}x" if base_rate else "    n/a"
        print(f"{level:>11} {pairs:>6.0f} {seconds:>8.2f} {rate:>8.1f} {speedup:>7} {server_max:>19.0f} "
              f"{rate / server_max:>6.0%} {cpu_per_request * 1000:>18.2f}")  # fmt: skip
    if base_rate:
        for level, pairs, seconds, _ in rows:
            if level == 16:
                speedup = pairs / seconds / base_rate
                print(f"goal: concurrency 16 >= 10x sequential -> {speedup:.1f}x {'met' if speedup >= 10 else 'NOT met'}")
                if args.repeat > 1:
                    each = [p / s / (b[0] / b[1]) for (p, s, _), b in zip(runs[16], runs[levels[0]])]
                    print("  per run (each against the sequential run just before it): "
                          + ", ".join(f"{ratio:.1f}x" for ratio in each))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
