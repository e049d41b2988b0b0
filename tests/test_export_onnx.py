"""domainfit export --onnx: the whole encoder as one ONNX graph, its int8 copy, and what each is worth.

The fast tests export a tiny random BERT (tests/train_support.py) at a Matryoshka dim;
the slow one exports the packaged MiniLM through the CLI, on real financial chunks.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from train_support import build_tiny_model

from domainfit.artifacts import RunDir, read_chunks, read_json, write_json
from domainfit.config import SplitConfig
from domainfit.export.onnx import onnx_unavailable

needs_onnx = pytest.mark.skipif(onnx_unavailable() is not None, reason="pip install 'domainfit[onnx]'")

TEXTS = [
    "What was the revenue in 2023?",
    "a",
    "Net income rose by 12 percent, driven by lower interest costs and a one-off gain on the sale of the logistics unit.",
    "word " * 300,  # longer than the tiny model's max_seq_length: truncated as sentence-transformers does
]
# int8 vs fp32, MiniLM at dim 128 over 887 financial chunks and questions: mean 0.992, worst 0.974
# (0.9999 on the tiny model); the bounds leave room for other CPUs' int8 kernels.
INT8_MIN_COSINE = 0.95
INT8_MEAN_COSINE = 0.98


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="module")
def tiny_onnx(tiny_model, tmp_path_factory) -> Path:
    from sentence_transformers import SentenceTransformer

    from domainfit.export.onnx import export_onnx

    target = tmp_path_factory.mktemp("tiny-onnx") / "onnx"
    export_onnx(SentenceTransformer(str(tiny_model), device="cpu"), target, dim=64)
    return target


@needs_onnx
def test_onnx_graph_gives_the_pytorch_vectors_at_the_matryoshka_dim(tiny_model, tiny_onnx):
    from sentence_transformers import SentenceTransformer

    from domainfit.export.onnx import OnnxEncoder

    expected = SentenceTransformer(str(tiny_model), device="cpu", truncate_dim=64).encode(
        TEXTS, normalize_embeddings=True)
    encoder = OnnxEncoder(tiny_onnx)
    assert encoder.inputs == ["input_ids", "attention_mask", "token_type_ids"]  # BERT's tokenizer makes all three
    vectors = encoder.encode(TEXTS, batch_size=3)  # batches of 3 and 1: dynamic batch and sequence axes
    assert vectors.shape == (4, 64) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.abs(vectors - expected).max() < 1e-5
    assert np.abs(encoder.encode(TEXTS[:1]) - expected[:1]).max() < 1e-5


@needs_onnx
def test_int8_copy_is_smaller_and_close_to_fp32(tiny_onnx):
    from domainfit.export.onnx import OnnxEncoder

    assert (tiny_onnx / "model_int8.onnx").stat().st_size < (tiny_onnx / "model.onnx").stat().st_size / 3
    fp32 = OnnxEncoder(tiny_onnx / "model.onnx").encode(TEXTS)
    int8 = OnnxEncoder(tiny_onnx / "model_int8.onnx").encode(TEXTS)
    assert not np.array_equal(fp32, int8)  # really quantized
    assert _cosines(fp32, int8).min() > INT8_MIN_COSINE and _cosines(fp32, int8).mean() > INT8_MEAN_COSINE


def _run_with_model(run: RunDir, model: Path, dims: list[int]) -> RunDir:
    """``run`` with splits and ``model`` as its fine-tuned model, Matryoshka dims recorded as train records them."""
    from domainfit.splits import ensure_splits

    ensure_splits(run, SplitConfig(by="chunk"))
    shutil.copytree(model, run.model_dir)
    write_json(run.model_dir / "domainfit_training.json", {"dims": dims})
    return run


@needs_onnx
def test_cli_export_onnx_prints_speed_and_ndcg_of_each_form(tiny_run, tiny_model, capsys):
    from domainfit.cli import main

    run = _run_with_model(tiny_run, tiny_model, [128, 64])
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(run.root), "--dim", "64", "--onnx", "--no-progress"])
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    meta = read_json(run.export_dir / "domainfit_export.json")
    measured = meta["measurements"]
    assert list(measured) == ["pytorch", "onnx", "onnx-int8"]
    for form, values in measured.items():
        line = next(line.split() for line in printed.splitlines() if line.split()[:1] == [form])
        assert line[1:] == [f"{values['ndcg@10']:.4f}", f"{values['mrr@10']:.4f}", f"{values['chunks_per_s']:.1f}"]
        assert values["chunks_per_s"] > 0
    assert measured["onnx"]["ndcg@10"] == pytest.approx(measured["pytorch"]["ndcg@10"], abs=1e-3)
    assert meta["onnx"] == {"onnx": "model.onnx", "onnx-int8": "model_int8.onnx"}
    onnx_meta = json.loads((run.export_dir / "onnx" / "domainfit_onnx.json").read_text(encoding="utf-8"))
    assert onnx_meta["dim"] == 64 and onnx_meta["normalized"] is True


def test_onnx_without_onnxruntime_is_one_line_naming_the_extra(tiny_run, tiny_model):
    run = _run_with_model(tiny_run, tiny_model, [128, 64])
    blocked = (
        "import sys; sys.modules['onnxruntime'] = None; from domainfit.cli import main; "
        f"main(['export', {str(run.root)!r}, '--onnx', '--no-progress'])"
    )
    done = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "onnxruntime" in lines[0] and "pip install 'domainfit[onnx]'" in lines[0]
    assert not run.export_dir.exists()


@needs_onnx
@pytest.mark.slow
def test_minilm_onnx_export_equals_pytorch_and_int8_stays_close(tiny_run, minilm_path, capsys):
    from sentence_transformers import SentenceTransformer

    from domainfit.cli import main
    from domainfit.export.onnx import OnnxEncoder

    run = _run_with_model(tiny_run, minilm_path, [384, 256, 128, 64])
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(run.root), "--dim", "128", "--onnx", "--no-progress"])
    assert exit_info.value.code in (0, None)
    assert "onnx-int8" in capsys.readouterr().out
    texts = [chunk.text for chunk in read_chunks(run.chunks)] + TEXTS
    expected = SentenceTransformer(str(run.export_dir / "model"), device="cpu").encode(
        texts, normalize_embeddings=True)
    assert expected.shape == (len(texts), 128)
    fp32 = OnnxEncoder(run.export_dir / "onnx").encode(texts)
    assert np.abs(fp32 - expected).max() < 1e-5
    int8 = OnnxEncoder(run.export_dir / "onnx" / "model_int8.onnx").encode(texts)
    cosines = _cosines(int8, expected)
    assert cosines.min() > INT8_MIN_COSINE and cosines.mean() > INT8_MEAN_COSINE
    measured = read_json(run.export_dir / "domainfit_export.json")["measurements"]
    assert measured["onnx"]["ndcg@10"] == pytest.approx(measured["pytorch"]["ndcg@10"], abs=1e-3)
    assert measured["onnx-int8"]["ndcg@10"] == pytest.approx(measured["pytorch"]["ndcg@10"], abs=0.05)
