"""ONNX and int8 dynamic-quantized ONNX exports through sentence-transformers' backend.

``SentenceTransformer(path, backend="onnx")`` exports the transformer with Optimum and
``export_dynamic_quantized_onnx_model`` quantizes its weights to int8 (no calibration
data), both into ``MODEL/onnx/``, where ``backend="onnx"`` finds them again. They need
``sentence-transformers[onnx]`` (optimum-onnx + onnxruntime); when that cannot be
installed (optimum-onnx 0.1.0 pins transformers < 4.58, so it cannot sit beside
transformers 5), :func:`onnx_unavailable` says why in one line.

Example::

    files = export_onnx(Path("runs/demo/export/model"))
    SentenceTransformer("runs/demo/export/model", backend="onnx",
                        model_kwargs={"file_name": "onnx/model_qint8_avx2.onnx"})
"""

from __future__ import annotations

import platform
from pathlib import Path


def onnx_unavailable() -> str | None:
    """Why ONNX export cannot run here, or None when it can."""
    try:
        import onnxruntime  # noqa: F401
        from optimum.onnxruntime import ORTModelForFeatureExtraction  # noqa: F401
    except ImportError as error:
        return (
            f"--onnx needs sentence-transformers[onnx] (optimum-onnx and onnxruntime): {error.name or error} "
            "is not installed; optimum-onnx 0.1.0, the newest, requires transformers < 4.58"
        )
    return None


def quantization_target() -> str:
    """sentence-transformers' int8 config for this CPU: ``arm64`` on ARM, else ``avx2`` (the portable x86 one)."""
    return "arm64" if platform.machine().lower() in ("arm64", "aarch64") else "avx2"


def export_onnx(model_dir: Path) -> dict[str, str]:
    """Write ``onnx/model.onnx`` and its int8 dynamic-quantized copy into ``model_dir``; returns their file names."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.backend import export_dynamic_quantized_onnx_model

    model = SentenceTransformer(str(model_dir), backend="onnx", device="cpu")
    model.save_pretrained(str(model_dir))
    target = quantization_target()
    export_dynamic_quantized_onnx_model(model, target, str(model_dir))
    return {"onnx": "onnx/model.onnx", "onnx-int8": f"onnx/model_qint8_{target}.onnx"}


def load_onnx(model_dir: Path, file_name: str):
    """The exported model on the ONNX backend, reading ``file_name`` under ``model_dir``."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir), backend="onnx", device="cpu", model_kwargs={"file_name": file_name})
