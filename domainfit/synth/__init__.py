"""synth: documents -> chunks -> validated question–chunk pairs.

:func:`run_synth` is the stage: it loads a document folder, cuts token-aware
chunks (``RUN/chunks.parquet``), asks an OpenAI-compatible LLM — or the offline
llama.cpp default — for questions on every eligible chunk, validates them and
appends ``RUN/pairs.jsonl`` / ``RUN/rejected.jsonl`` as it goes. Re-running the
same command resumes: finished chunks are not sent again.

The parts are public too: :func:`load_documents`, :func:`chunk_documents`,
:func:`generate_pairs` (async), :func:`generate_pairs_in_batches` (async,
``llm.mode = "batch"``), the filters and the LLM client.

Example::

    from domainfit import RunDir, load_config
    from domainfit.synth import run_synth
    result = run_synth("docs/", RunDir("runs/x"), load_config(overrides={"llm.model": "gpt-4o-mini"}))
    print(result.summary())
"""

from .chunking import chunk_documents, load_tokenizer
from .batch import generate_pairs_in_batches
from .documents import load_documents
from .filters import check_pair
from .generate import generate_pairs
from .llm import LLMClient, open_endpoint
from .stage import SynthResult, run_synth

__all__ = [
    "run_synth",
    "SynthResult",
    "load_documents",
    "load_tokenizer",
    "chunk_documents",
    "check_pair",
    "generate_pairs",
    "generate_pairs_in_batches",
    "LLMClient",
    "open_endpoint",
]
