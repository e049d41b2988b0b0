"""The exported model as one ONNX graph, an int8 copy of it, and a small loader.

The graph is the whole encoder: the transformer, the model's own pooling (and any
Dense layers), the Matryoshka truncation to the export dim and, when the model's
vectors are compared by cosine, L2 normalisation. It takes ``input_ids``,
``attention_mask`` (and ``token_type_ids`` where the tokenizer makes them), with
dynamic batch and sequence axes, and returns ``sentence_embedding`` (batch × dim).
It is written by ``torch.onnx.export`` (the torch.export-based exporter, which needs
``onnxscript``); ``model_int8.onnx`` is ``onnxruntime.quantization.quantize_dynamic``
of it: int8 weights per output channel, activations quantized at run time, no
calibration data (see :func:`quantize_int8`).

domainfit does not use sentence-transformers' ONNX backend: it exports through
Optimum, whose ``optimum-onnx`` (0.1.0, the newest) requires transformers < 4.58.
Loading needs only onnxruntime and the tokenizer saved beside the graph, which is
what :class:`OnnxEncoder` does (copy it into a service as it is).

Example::

    files = export_onnx(model, Path("runs/demo/export/onnx"), dim=128)
    encoder = OnnxEncoder("runs/demo/export/onnx/model_int8.onnx")
    vectors = encoder.encode(["What was the revenue in 2023?"])   # (1, 128) float32
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..artifacts import write_json
from ..errors import ConfigError, first_line

ONNX_META = "domainfit_onnx.json"
FP32_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
OUTPUT_NAME = "sentence_embedding"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
_ONNX_PACKAGES = ("onnx", "onnxruntime", "onnxscript")
_SINGLE_FILE_LIMIT = 2**31 - 2**26  # protobuf's 2 GiB, less room for the graph itself


def onnx_unavailable() -> str | None:
    """Why ONNX export cannot run here (a one-line fix), or None when it can."""
    import importlib

    for name in _ONNX_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            return f"--onnx needs {name}, which is not installed: pip install 'domainfit[onnx]'"
    return None


def export_onnx(model, target: Path, *, dim: int) -> dict[str, str]:
    """Write ``model.onnx``, ``model_int8.onnx``, the tokenizer and ``domainfit_onnx.json`` into ``target``.

    ``model`` is a loaded ``SentenceTransformer``; the graph gives what
    ``model.encode(texts, truncate_dim=dim, normalize_embeddings=True)`` gives (without
    the normalisation when the model compares by dot product and has no Normalize
    module). Returns the file names, keyed ``onnx`` and ``onnx-int8``.
    """
    import torch

    _check_supported(model)
    if model.device.type != "cpu":
        model = copy.deepcopy(model).to("cpu")
    model.eval()
    target.mkdir(parents=True, exist_ok=True)
    normalize = _normalizes(model)
    example = model.tokenizer(
        ["an example input", "a second, somewhat longer example input for the exporter"],
        padding=True, truncation="longest_first", max_length=model.max_seq_length, return_tensors="pt",
    )
    names = [name for name in INPUT_NAMES if name in example]
    wrapper = _embedding_module(model, dim=dim, normalize=normalize, input_names=names)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    large = sum(p.numel() * p.element_size() for p in model.parameters()) >= _SINGLE_FILE_LIMIT
    wrapper.eval()
    try:
        with torch.no_grad(), _quiet_exporter():
            torch.onnx.export(
                wrapper, tuple(example[name] for name in names), str(target / FP32_FILE),
                input_names=names, output_names=[OUTPUT_NAME],
                dynamic_shapes=tuple({0: batch, 1: sequence} for _ in names),
                external_data=large, dynamo=True, verbose=False,
            )
    except Exception as error:  # the exporter's errors have no common type; any of them means "not this model"
        raise ConfigError(f"--onnx: torch.onnx.export cannot export this model: {first_line(error, 300)}") from error
    quantize_int8(target / FP32_FILE, target / INT8_FILE, large=large)
    model.tokenizer.save_pretrained(str(target))
    meta = {
        "dim": dim, "normalized": normalize, "max_seq_length": model.max_seq_length, "inputs": names,
        "output": OUTPUT_NAME, "prompts": dict(model.prompts or {}),
        "default_prompt_name": model.default_prompt_name, "files": {"onnx": FP32_FILE, "onnx-int8": INT8_FILE},
    }
    write_json(target / ONNX_META, meta)
    return dict(meta["files"])


def quantize_int8(source: Path, target: Path, *, large: bool = False) -> None:
    """int8 dynamic quantization of ``source`` into ``target``, as onnxruntime recommends for transformers on CPU.

    The graph is first pre-processed (``quant_pre_process``: shape inference and
    onnxruntime's graph optimisation). Weights become signed int8 per output channel
    (per-tensor lost up to 0.05 cosine on MiniLM) in 7 bits (``reduce_range``: x86 CPUs
    without VNNI may saturate on full 8-bit weights, and the file may run on any CPU);
    activations are quantized to uint8 at run time.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="domainfit-onnx-") as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        # Symbolic shape inference cannot follow the exporter's dynamic sequence axis; ONNX's own can.
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True, save_as_external_data=large)
        quantize_dynamic(prepared, target, per_channel=True, reduce_range=True, weight_type=QuantType.QInt8,
                         use_external_data_format=large)


class OnnxEncoder:
    """An exported ONNX graph with its tokenizer: ``encode(texts)`` -> float32 vectors of the export dim.

    ``path`` is the ``onnx/`` folder (``model.onnx``) or one ``.onnx`` file in it. Needs
    only onnxruntime, transformers' tokenizer and the files domainfit wrote beside it.

    Example::

        encoder = OnnxEncoder("runs/demo/export/onnx/model_int8.onnx")
        encoder.encode_query(["What was the revenue in 2023?"]).shape   # (1, 128)
    """

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        import onnxruntime
        from transformers import AutoTokenizer

        path = Path(path)
        folder, file = (path, path / FP32_FILE) if path.is_dir() else (path.parent, path)
        self.meta = json.loads((folder / ONNX_META).read_text(encoding="utf-8"))
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.inputs = [item.name for item in self.session.get_inputs()]
        self.dim = int(self.meta["dim"])

    def encode(self, texts: Sequence[str], batch_size: int = 32, *, prompt: str | None = None) -> np.ndarray:
        """Vectors of ``texts`` (``prompt`` prepended), shape (len(texts), dim), in input order.

        Texts are batched longest first, as sentence-transformers does, so that a batch
        pads to lengths close to its own.
        """
        texts = [(prompt or "") + text for text in texts]
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([-len(text) for text in texts], kind="stable")
        for start in range(0, len(texts), batch_size):
            batch = order[start:start + batch_size]
            features = self.tokenizer(
                [texts[index] for index in batch], padding=True, truncation="longest_first",
                max_length=self.meta["max_seq_length"], return_tensors="np",
            )
            feed = {name: features[name].astype(np.int64) for name in self.inputs}
            vectors[batch] = self.session.run([self.meta["output"]], feed)[0]
        return vectors

    def encode_query(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Like ``SentenceTransformer.encode_query``: the model's ``query`` prompt, if it has one."""
        return self.encode(texts, batch_size, prompt=self._prompt(("query",)))

    def encode_document(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Like ``SentenceTransformer.encode_document``: its ``document`` / ``passage`` / ``corpus`` prompt."""
        return self.encode(texts, batch_size, prompt=self._prompt(("document", "passage", "corpus")))

    def _prompt(self, names: tuple[str, ...]) -> str | None:
        prompts = self.meta.get("prompts") or {}
        for name in (*names, self.meta.get("default_prompt_name")):
            if name in prompts:
                return prompts[name]
        return None


def _embedding_module(model, *, dim: int, normalize: bool, input_names: list[str]):
    """A torch module computing what the graph computes: the model's own forward, cut to ``dim``, normalised."""
    import torch

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
            embedding = self.model({name: given[name] for name in input_names})["sentence_embedding"][:, :dim]
            return torch.nn.functional.normalize(embedding, p=2, dim=1) if normalize else embedding

    return SentenceEmbedding()


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Hide the exporter's warnings and log lines (torchvision ops it skips, axis names it merges)."""
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        onnx_logger.setLevel(level)


def _normalizes(model) -> bool:
    """True when the model's vectors are unit length or compared by cosine, as every domainfit search does."""
    from sentence_transformers.sentence_transformer.modules import Normalize

    return any(isinstance(module, Normalize) for module in model) or model.similarity_fn_name == "cosine"


def _check_supported(model) -> None:
    from sentence_transformers.base.modules.router import Router

    if any(isinstance(module, Router) for module in model):
        raise ConfigError("--onnx cannot export a model with a Router (separate query and document paths)")
    if not hasattr(model, "tokenizer") or model.tokenizer is None:
        raise ConfigError("--onnx exports text models only: this model has no tokenizer")
