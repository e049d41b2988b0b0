"""Time and score the export's three forms: PyTorch, ONNX and int8 ONNX of one model.

A run is built from the financial QA 10-K pairs (``../shared/benchmarks``, one chunk per
distinct context, as the tests build theirs), the packaged MiniLM stands in as its
fine-tuned model, and ``domainfit export RUN --dim D --onnx`` writes and measures every
form on the run's test split (chunks/s encoded at the export batch size on CPU, and
NDCG@10 / MRR@10 of the test questions against every chunk).

Run::

    .venv/bin/python benchmarks/bench_export.py                  # 600 pairs, dim 128
    .venv/bin/python benchmarks/bench_export.py --pairs 2000 --dim 384
    .venv/bin/python benchmarks/bench_export.py --threads 1   # and each form again on one thread
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=600, help="financial QA pairs to build the run from")
    parser.add_argument("--dim", type=int, default=128, help="export dim (384, 256, 128 or 64)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0,
                        help="also measure each form again on this many threads (torch and onnxruntime alike)")
    args = parser.parse_args()

    from conftest import financial_rows, run_from_rows

    from domainfit.artifacts import write_json
    from domainfit.config import SplitConfig, load_config
    from domainfit.export import run_export
    from domainfit.models import resolve
    from domainfit.splits import ensure_splits

    with tempfile.TemporaryDirectory(prefix="bench-export-") as scratch:
        run = run_from_rows(Path(scratch) / "run", financial_rows(args.pairs, stride=3))
        ensure_splits(run, SplitConfig(by="chunk"))
        shutil.copytree(resolve("minilm"), run.model_dir)
        write_json(run.model_dir / "domainfit_training.json", {"dims": [384, 256, 128, 64]})
        config = load_config(overrides={"export.dim": args.dim, "export.onnx": True,
                                        "export.batch_size": args.batch_size}, environ={})
        result = run_export(run, config, progress=False)
        print(result.summary())
        print(f"export took {result.seconds:.0f} s on {os.cpu_count()} CPUs")
        if args.threads:
            print(f"again on {args.threads} thread(s) each (ndcg@10, chunks/s):")
            for form, values in _measure_on_threads(run, args.threads, args.batch_size).items():
                print(f"    {form:<10} {values['ndcg@10']:>8.4f} {values['chunks_per_s']:>9.1f}")
    return 0


def _measure_on_threads(run, threads: int, batch_size: int) -> dict[str, dict[str, float]]:
    """Each exported form measured with the same thread count, which a loaded machine disturbs less."""
    import torch
    from sentence_transformers import SentenceTransformer

    from domainfit.artifacts import read_chunks
    from domainfit.export.measure import measure_encoder, measure_model
    from domainfit.export.onnx import OnnxEncoder
    from domainfit.export.stage import _test_set

    test = _test_set(run, read_chunks(run.chunks))
    torch.set_num_threads(threads)
    measured = {"pytorch": measure_model(SentenceTransformer(str(run.export_dir / "model"), device="cpu"), *test,
                                         batch_size=batch_size)}
    for form, file_name in (("onnx", "model.onnx"), ("onnx-int8", "model_int8.onnx")):
        encoder = OnnxEncoder(run.export_dir / "onnx" / file_name, threads=threads)
        measured[form] = measure_encoder(encoder.encode_query, encoder.encode_document, *test, batch_size=batch_size)
    return measured
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
