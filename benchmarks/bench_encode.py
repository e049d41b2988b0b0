"""Encoding throughput: one process vs a pool of N CPU processes (and, with --ray, Ray Data).

The same N legal-rag chunks (real RAG-sized passages) are encoded by the packaged
MiniLM with :func:`domainfit.encoding.encode`:

* in this process (torch uses every core);
* in sentence-transformers' multi-process pool of ``--processes`` CPU workers
  (``[encode] processes``), each with its share of the cores; the pool's start-up is
  timed apart from its warm throughput, since a long corpus pays it once;
* with ``--ray``, in :func:`domainfit.scale.encode_parquet` on a local Ray with the same
  number of workers (Ray's start-up excluded, reading and writing Parquet included).

It prints texts/s for each, the ratios, the largest difference from the one-process
vectors, and the mean tokens per chunk (what a GPU estimate must be scaled by). On a
machine shared with other work the numbers are under load: compare ratios, not rates.

Run::

    .venv/bin/python benchmarks/bench_encode.py                     # 512 chunks, 2 processes
    .venv/bin/python benchmarks/bench_encode.py --chunks 2048 --ray
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEGAL = ROOT.parent / "shared" / "benchmarks" / "legal-rag"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(ROOT))


def legal_chunks(limit: int, folder: Path = LEGAL) -> list[str]:
    """The first ``limit`` distinct chunk texts of legal-rag (train then test), repeated if there are fewer."""
    texts: dict[str, str] = {}
    for split in ("train", "test"):
        for line in (folder / f"{split}.jsonl").open(encoding="utf-8"):
            row = json.loads(line)
            texts.setdefault(str(row["chunk_id"]), row["context"])
    distinct = list(texts.values())
    return [distinct[i % len(distinct)] for i in range(limit)]


def time_ray(texts: list[str], workers: int, batch_size: int):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from domainfit.scale import encode_parquet, local_ray, read_vectors

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "chunks", Path(folder) / "vectors"
        source.mkdir()
        ids = [f"c{i:07d}" for i in range(len(texts))]
        pq.write_table(pa.table({"chunk_id": ids, "text": texts}), source / "part-0.parquet")
        with local_ray(num_cpus=workers + 1):
            started = time.perf_counter()
            encode_parquet(source, target, workers=workers, batch_size=batch_size,
                           rows_per_batch=max(1, len(texts) // (4 * workers)), blocks=4 * workers)
            seconds = time.perf_counter() - started
        found = read_vectors(target)
        return np.stack([found[chunk_id] for chunk_id in ids]), seconds


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=512, help="chunks to encode (default 512)")
    parser.add_argument("--processes", type=int, default=2, help="CPU workers of the pool (default 2)")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per forward pass")
    parser.add_argument("--ray", action="store_true", help="also time domainfit.scale on a local Ray")
    parser.add_argument("--data", type=Path, default=LEGAL, help="folder with legal-rag train/test.jsonl")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "bench_encode.json")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from domainfit.config import EncodeConfig
    from domainfit.encoding import Encoder, encode
    from domainfit.models import load_model

    texts = legal_chunks(args.chunks, args.data)
    model = load_model("minilm")
    tokens = [len(ids) for ids in model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"]]
    encode(model, texts[:8], kind="document", batch_size=args.batch_size, progress=False)  # warm-up
    print(f"legal-rag: {len(texts)} chunks, {np.mean(tokens):.0f} tokens each on average (max {max(tokens)}), "
          f"batch {args.batch_size}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)

    started = time.perf_counter()
    single = encode(model, texts, kind="document", batch_size=args.batch_size, progress=False)
    single_s = time.perf_counter() - started
    print(f"1 process:            {len(texts) / single_s:8.1f} texts/s ({single_s:.1f} s)", flush=True)

    settings = EncodeConfig(processes=args.processes, pool_min_texts=0)
    with Encoder(model, kind="document", batch_size=args.batch_size, settings=settings, progress=False) as encoder:
        started = time.perf_counter()
        encoder(texts[:8])  # starts the pool
        pool_start_s = time.perf_counter() - started
        started = time.perf_counter()
        pooled = encoder(texts)
        pool_s = time.perf_counter() - started
    print(f"{args.processes} processes (warm):  {len(texts) / pool_s:8.1f} texts/s ({pool_s:.1f} s; "
          f"starting the pool took {pool_start_s:.1f} s more)", flush=True)
    result = {
        "chunks": len(texts), "mean_tokens": float(np.mean(tokens)), "batch_size": args.batch_size,
        "cores": os.cpu_count(), "load_average": os.getloadavg()[0], "processes": args.processes,
        "single_texts_per_s": len(texts) / single_s, "pool_texts_per_s": len(texts) / pool_s,
        "pool_start_s": pool_start_s, "pool_ratio": single_s / pool_s,
        "pool_max_diff": float(np.abs(pooled - single).max()),
    }
    if args.ray:
        ray_vectors, ray_s = time_ray(texts, args.processes, args.batch_size)
        result.update(ray_texts_per_s=len(texts) / ray_s, ray_ratio=single_s / ray_s,
                      ray_max_diff=float(np.abs(ray_vectors - single).max()))
        print(f"Ray Data, {args.processes} workers: {len(texts) / ray_s:8.1f} texts/s ({ray_s:.1f} s, "
              "actor start-up and Parquet read/write included)", flush=True)

    print(f"\npool vs 1 process: {result['pool_ratio']:.2f}x; largest difference {result['pool_max_diff']:.1e}")
    if args.ray:
        print(f"Ray vs 1 process:  {result['ray_ratio']:.2f}x; largest difference {result['ray_max_diff']:.1e}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
