"""Configuration: one pydantic model per stage, gathered in :class:`RunConfig`.

The same models are filled from a TOML file (``--config run.toml``, one table per
stage), from environment variables (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``,
``DOMAINFIT_LLM_MODEL``) and from CLI flags, in that order of precedence (flags win).
Unknown keys and bad values fail before any work, with one line naming the key.

Example::

    cfg = load_config("run.toml", overrides={"train.epochs": 2})
    cfg.train.loss            # 'cached-mnrl'
    print(dump_toml(cfg))     # the resolved config, API key masked
"""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .artifacts import STAGE_SECTIONS, json_hash
from .errors import ConfigError, first_validation_error

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class _Section(BaseModel):
    """A config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_enum_values=True)


# --------------------------------------------------------------------------- synth


class PromptStyle(str, Enum):
    """How the LLM is asked for structured output.

    ``auto`` picks ``completion`` for the offline base model and ``tools`` otherwise.
    """

    auto = "auto"
    tools = "tools"  # instructor Mode.TOOLS: OpenAI function calling
    json = "json"  # instructor Mode.JSON: JSON object response format
    completion = "completion"  # few-shot text completion for base models, parsed by us


class QueryStyle(str, Enum):
    """What kind of search query synth writes for a chunk (``synth.query_styles``)."""

    question = "question"  # "How long is a contractor pass valid?"
    claim = "claim"  # "Contractor passes are valid for a year."
    keywords = "keywords"  # "contractor pass validity"


class LLMConfig(_Section):
    """The question-writing LLM: any OpenAI-compatible endpoint, or the local default."""

    base_url: str | None = Field(
        None, description="OpenAI-compatible endpoint; unset starts the local llama.cpp server"
    )
    model: str | None = Field(None, description="model name sent to the endpoint")
    api_key: SecretStr | None = Field(None, description="API key (prefer OPENAI_API_KEY)")
    prompt_style: PromptStyle = Field(PromptStyle.auto, description="structured-output mode")
    temperature: float = Field(0.7, ge=0.0, le=2.0, description="sampling temperature")
    max_tokens: int = Field(512, gt=0, description="completion token cap per request")
    max_concurrency: int = Field(16, ge=1, le=1024, description="requests in flight at once")
    requests_per_minute: float | None = Field(None, gt=0, description="client-side rate limit")
    tokens_per_minute: float | None = Field(None, gt=0, description="client-side token rate limit")
    timeout_s: float = Field(60.0, gt=0, description="deadline for a whole request, in seconds")
    max_retries: int = Field(5, ge=0, description="retries on 429/5xx/timeouts/dropped connections")
    retry_initial_delay_s: float = Field(
        0.5, ge=0, description="first backoff before a retry; doubles each time, with full jitter"
    )
    retry_max_delay_s: float = Field(30.0, ge=0, description="longest wait between retries (Retry-After too)")
    max_reasks: int = Field(1, ge=0, description="re-asks when an answer fails validation")
    price_per_1k_input: float | None = Field(None, ge=0, description="USD per 1k prompt tokens")
    price_per_1k_output: float | None = Field(None, ge=0, description="USD per 1k completion tokens")
    mode: Literal["live", "batch"] = Field(
        "live", description="live: a request per chunk; batch: one Batch API job (/v1/files + /v1/batches), polled"
    )
    batch_poll_interval_s: float = Field(30.0, gt=0, description="seconds between polls of a submitted batch")
    batch_max_requests: int = Field(
        50_000, ge=1, le=50_000, description="requests per batch (the API's cap); more go in further batches"
    )
    batch_price_factor: float = Field(
        0.5, ge=0, description="batch price as a share of price_per_1k_input/output (OpenAI: 0.5)"
    )
    local_model_path: str | None = Field(
        None, description="GGUF for the local server; unset uses the packaged Gemma 3 270M"
    )
    local_context: int = Field(2048, ge=256, description="context window of the local server")
    local_threads: int | None = Field(None, ge=1, description="CPU threads for the local server")
    local_seed: int = Field(42, description="sampling seed of the local model (endpoints are not seeded)")
    local_startup_timeout_s: float = Field(
        180.0, gt=0, description="how long to wait for the local server to answer"
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)

    @field_validator("mode")
    @classmethod
    def _batch_needs_an_endpoint(cls, value: str, info: ValidationInfo) -> str:
        # a field validator, not a model one: its error shows this value, never the section (api_key)
        if value == "batch" and info.data.get("base_url") is None:
            raise ValueError("batch needs llm.base_url: the local llama.cpp server has no Batch API")
        return value

    @property
    def is_local(self) -> bool:
        return self.base_url is None


class SynthConfig(_Section):
    """Documents -> chunks -> validated question–chunk pairs."""

    extensions: list[str] = Field(
        [".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"],
        description="file types loaded from the document folder",
    )
    max_file_mb: float = Field(50.0, gt=0, description="files larger than this are skipped")
    max_expanded_mb: float = Field(
        64.0, gt=0, description="docx/pdf files whose contents expand beyond this are skipped"
    )
    chunk_max_tokens: int = Field(200, ge=16, description="chunk size in base-model tokens")
    chunk_overlap_tokens: int = Field(30, ge=0, description="tokens shared by adjacent chunks")
    min_chunk_tokens: int = Field(24, ge=1, description="smaller chunks are not sent to the LLM")
    questions_per_chunk: int = Field(2, ge=1, le=20, description="questions asked per chunk")
    question_min_tokens: int = Field(4, ge=1, description="shortest acceptable question")
    question_max_tokens: int = Field(64, ge=2, description="longest acceptable question")
    grounding_min_ratio: float = Field(
        0.85, ge=0, le=1, description="fuzzy match ratio for an evidence span to count as grounded"
    )
    copy_ngram: int = Field(5, ge=2, description="word n-gram size of the copy check")
    copy_max_overlap: float = Field(
        0.5, ge=0, le=1, description="share of a question's n-grams found in the chunk that rejects it"
    )
    near_duplicate_cosine: float = Field(
        0.95, gt=0, le=1, description="questions more similar than this are duplicates"
    )
    judge: bool = Field(False, description="ask the LLM to score each pair (costs a call per pair)")
    judge_min_score: int = Field(4, ge=1, le=5, description="judge score (1-5) needed to keep a pair")
    roundtrip: Literal["bm25", "embedding", "off"] = Field(
        "bm25", description="round trip: rank all chunks for each question by BM25 or the base model"
    )
    roundtrip_top_k: int = Field(
        10, ge=0, description="keep a pair only if its chunk ranks in the top k of all chunks (0 = off)"
    )
    query_styles: list[QueryStyle] = Field(
        ["question"], min_length=1, description="query kinds to write: question, claim, keywords"
    )
    query_style_mix: list[float] | None = Field(
        None, description="share of chunks per query style, in query_styles order; unset = equal shares"
    )
    token_budget: int | None = Field(None, gt=0, description="stop cleanly after this many tokens")
    max_chunks: int | None = Field(None, gt=0, description="only send the first N chunks (demo/debug)")

    @model_validator(mode="after")
    def _overlap_below_size(self) -> "SynthConfig":
        if self.chunk_overlap_tokens >= self.chunk_max_tokens:
            raise ValueError(
                f"chunk_overlap_tokens ({self.chunk_overlap_tokens}) must be below "
                f"chunk_max_tokens ({self.chunk_max_tokens})"
            )
        if self.question_min_tokens > self.question_max_tokens:
            raise ValueError("question_min_tokens must not exceed question_max_tokens")
        if len(set(self.query_styles)) != len(self.query_styles):
            raise ValueError("query_styles lists a style twice")
        if self.query_style_mix is not None:
            if len(self.query_style_mix) != len(self.query_styles):
                raise ValueError(
                    f"query_style_mix has {len(self.query_style_mix)} shares for "
                    f"{len(self.query_styles)} query_styles"
                )
            if any(share < 0 for share in self.query_style_mix) or sum(self.query_style_mix) <= 0:
                raise ValueError("query_style_mix shares must be >= 0 and not all 0")
        return self

    @property
    def roundtrip_on(self) -> bool:
        """Whether the round-trip check runs (``roundtrip`` not off and ``roundtrip_top_k`` > 0)."""
        return self.roundtrip != "off" and self.roundtrip_top_k > 0


# --------------------------------------------------------------------------- split


class SplitConfig(_Section):
    """How held-out test (and validation) queries are chosen."""

    by: Literal["document", "chunk", "query"] = Field(
        "document",
        description="unit kept together: 'query' is the random row split (optimistic: it leaks chunks)",
    )
    test_fraction: float = Field(0.2, gt=0, lt=1, description="share of units held out for test")
    val_fraction: float = Field(0.1, ge=0, lt=1, description="share of train units for validation")
    seed: int = Field(42, description="split seed")


# --------------------------------------------------------------------------- mining


class MiningConfig(_Section):
    """Hard / semi-hard negatives from a LanceDB index of chunk vectors."""

    strategy: Literal["hard", "semi-hard", "random"] = Field("hard", description="how negatives are chosen")
    num_negatives: int = Field(3, ge=1, description="negatives per pair")
    range_min: int = Field(0, ge=0, description="skip this many top candidates (hard/random)")
    range_max: int = Field(50, ge=1, description="candidates retrieved per query")
    relative_margin: float | None = Field(
        0.05, ge=0, lt=1, description="keep negatives scoring below pos*(1-m) (NV-Retriever TopK-PercPos)"
    )
    absolute_margin: float | None = Field(None, ge=0, description="keep negatives below pos - m")
    semi_hard_margin: float = Field(0.1, gt=0, description="semi-hard: pos - margin < neg < pos")
    max_score: float | None = Field(None, description="drop candidates scoring above this")
    min_score: float | None = Field(None, description="drop candidates scoring below this")
    near_duplicate_cosine: float | None = Field(
        0.98, gt=0, le=1, description="drop candidates this similar to the positive chunk (unset = off)"
    )
    output_format: Literal["n-tuple", "triplet"] = Field(
        "n-tuple", description="one row with n negatives, or one row per negative"
    )
    batch_size: int = Field(64, ge=1, description="encoding batch size")
    query_batch_size: int = Field(64, ge=1, description="query vectors sent to LanceDB per search call")
    ann_min_rows: int = Field(100_000, ge=1, description="tables at least this large get an ANN index")
    ann_index: Literal["IVF_PQ", "IVF_HNSW_SQ"] = Field(
        "IVF_PQ", description="ANN index type (IVF_PQ builds far faster on CPU)"
    )
    ann_partition_rows: int = Field(8192, ge=16, description="rows per IVF partition of the ANN index")
    refine_factor: int = Field(10, ge=1, description="ANN candidates re-ranked exactly, as a multiple")
    nprobes: int = Field(20, ge=1, description="ANN partitions searched per query (raised to reach the recall)")
    ann_target_recall: float = Field(
        0.99, gt=0, le=1, description="ANN must find this share of exact search's candidates"
    )
    ann_recall_queries: int = Field(64, ge=1, description="queries searched exactly to measure ANN recall")
    seed: int = Field(42, description="seed of the random strategy")


# --------------------------------------------------------------------------- train


class TrainConfig(_Section):
    """Fine-tuning with sentence-transformers' trainer (see docs/train.md for each key).

    The defaults are the recipe measured in benchmarks/bench_train.py: cached MNRL over
    large batches with one mined hard negative per pair, inside MatryoshkaLoss.
    """

    loss: Literal["cached-mnrl", "mnrl", "triplet"] = Field("cached-mnrl", description="training loss")
    matryoshka_dims: list[int] | None = Field(
        None, description="dims for MatryoshkaLoss; unset = model dim, then powers of two down to 64; [] = off"
    )
    use_negatives: bool = Field(True, description="feed mined negatives (triplets.parquet) to the loss")
    negatives_per_pair: int | None = Field(
        1, ge=0, description="mined negatives per pair for MNRL columns / triplet rows (None = all mined)"
    )
    epochs: float = Field(4.0, gt=0, description="training epochs (the best epoch on validation is kept)")
    max_steps: int = Field(-1, ge=-1, description="stop after this many optimizer steps (-1 = use epochs)")
    batch_size: int | None = Field(
        None, ge=2, description="pairs per batch per device (= MNRL's in-batch negatives); unset = auto"
    )
    mini_batch_size: int | None = Field(
        None, ge=1, description="cached-mnrl: texts per forward pass of the gradient cache; unset = min(32, batch)"
    )
    gradient_accumulation_steps: int = Field(
        1, ge=1, description="accumulate gradients; does NOT enlarge MNRL's negatives (cached-mnrl does)"
    )
    learning_rate: float = Field(1e-4, gt=0, description="peak learning rate")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="share of steps spent warming up")
    lr_scheduler: Literal["cosine", "linear", "constant_with_warmup"] = Field(
        "cosine", description="learning-rate schedule"
    )
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay")
    base_merge_ratio: Annotated[float, Field(ge=0, lt=1)] | Literal["auto"] = Field(
        0.75,
        description="share of the base model's weights averaged into the trained one (WiSE-FT); 0 = off; "
        "'auto' = the best of merge_ratio_grid on the val split",
    )
    merge_ratio_grid: list[Annotated[float, Field(ge=0, lt=1)]] = Field(
        [0.0, 0.25, 0.5, 0.75],
        min_length=1,
        description="ratios base_merge_ratio = 'auto' tries on the val split (ties: the larger); no val split: the largest",
    )
    base_distillation: Annotated[float, Field(ge=0)] | Literal["auto"] = Field(
        "auto",
        description="weight of a loss term that keeps each Matryoshka prefix's in-batch scores close to "
        "the base model's full-dim scores (KL); 0 = off; 'auto' = 1 when most training pairs were "
        "written by synth's LLM, else 0",
    )
    max_seq_length: int | None = Field(None, ge=8, description="token cap; unset = the model's")
    scale: float = Field(20.0, gt=0, description="MNRL similarity scale (1/temperature)")
    triplet_margin: float = Field(0.3, ge=0, description="TripletLoss margin")
    triplet_distance: Literal["cosine", "euclidean", "manhattan"] = Field(
        "cosine", description="TripletLoss distance"
    )
    eval_strategy: Literal["steps", "epoch", "no"] = Field(
        "epoch", description="when to validate on the val split (and keep the best checkpoint)"
    )
    eval_steps: int | None = Field(None, ge=1, description="validate every N steps (strategy 'steps')")
    save_steps: int | None = Field(
        None, ge=1, description="checkpoint every N steps; unset = at every validation (or epoch)"
    )
    save_total_limit: int = Field(2, ge=1, description="checkpoints kept in RUN/checkpoints")
    keep_checkpoints: bool = Field(False, description="keep RUN/checkpoints after the model is written")
    metric_for_best_model: str | None = Field(
        None, description="validation metric for the best checkpoint, e.g. dim_128_cosine_ndcg@10; unset = NDCG@10 at a mid dim"
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto = bf16 + tf32 + fused AdamW on a bf16 GPU, fp16 on an older GPU, fp32 on CPU"
    )
    gather_across_devices: bool = Field(True, description="MNRL: share in-batch negatives across GPUs")
    seed: int = Field(42, description="training seed")
    push_to_hub: bool = Field(False, description="push the model to the Hugging Face hub (needs network)")
    hub_model_id: str | None = Field(None, description="repo id for push_to_hub")
    logging_steps: int = Field(10, ge=1, description="log the loss every N steps")
    report_to: Literal["none", "tensorboard", "mlflow", "wandb", "trackio"] = Field(
        "none", description="experiment tracker for the training curves (and eval/rerank metrics: tensorboard, in RUN/tracking)"
    )

    @field_validator("matryoshka_dims")
    @classmethod
    def _positive_dims(cls, dims: list[int] | None) -> list[int] | None:
        if dims is not None and any(dim < 1 for dim in dims):
            raise ValueError("dims must be positive integers")
        return dims


# --------------------------------------------------------------------------- eval


#: The metric cut-offs of sentence-transformers' InformationRetrievalEvaluator, by its
#: argument names: eval's defaults (``eval.*_at_k``) and train's validation use them.
IR_CUTOFFS: dict[str, tuple[int, ...]] = {
    "accuracy_at_k": (1, 3, 5, 10),
    "precision_recall_at_k": (1, 3, 5, 10),
    "mrr_at_k": (10,),
    "ndcg_at_k": (10,),
    "map_at_k": (100,),
}


def _cutoffs(name: str, what: str):
    return Field(list(IR_CUTOFFS[name]), min_length=1, description=f"{what} cut-offs")


class EvalConfig(_Section):
    """Held-out retrieval metrics at every Matryoshka dim."""

    dims: list[int] | None = Field(
        None, description="dims to report; unset = train.matryoshka_dims, else the model dim and halvings to 64"
    )
    ndcg_at_k: list[int] = _cutoffs("ndcg_at_k", "NDCG")
    mrr_at_k: list[int] = _cutoffs("mrr_at_k", "MRR")
    map_at_k: list[int] = _cutoffs("map_at_k", "MAP")
    accuracy_at_k: list[int] = _cutoffs("accuracy_at_k", "accuracy")
    precision_recall_at_k: list[int] = _cutoffs("precision_recall_at_k", "precision/recall")
    bm25: bool = Field(True, description="include a BM25 baseline")
    hybrid: bool = Field(True, description="add base+bm25 and finetuned+bm25 rows: reciprocal rank fusion with BM25")
    rrf_k: int = Field(60, ge=1, description="reciprocal rank fusion constant: score = sum of 1 / (rrf_k + rank)")
    queries: str | None = Field(
        None, description="JSONL of real queries judged by document (--queries); they head the report, never trained on"
    )
    batch_size: int = Field(32, ge=1, description="encoding batch size (32 = sentence-transformers' evaluator)")
    score_block_mb: float = Field(
        256.0, gt=0, description="memory for one block of query x corpus scores; queries are ranked block by block"
    )
    main_metric: str = Field("ndcg@10", description="metric in the summary table and plots")

    @field_validator("dims", "ndcg_at_k", "mrr_at_k", "map_at_k", "accuracy_at_k", "precision_recall_at_k")
    @classmethod
    def _positive(cls, values: list[int] | None) -> list[int] | None:
        if values is not None and any(value < 1 for value in values):
            raise ValueError("values must be positive integers")
        return values

    @model_validator(mode="after")
    def _main_metric_is_computed(self) -> "EvalConfig":
        computed = {f"{name}@{k}" for name, ks in (
            ("ndcg", self.ndcg_at_k), ("mrr", self.mrr_at_k), ("map", self.map_at_k),
            ("accuracy", self.accuracy_at_k), ("precision", self.precision_recall_at_k),
            ("recall", self.precision_recall_at_k),
        ) for k in ks}
        if self.main_metric not in computed:
            raise ValueError(f"main_metric {self.main_metric!r} is not computed; one of {', '.join(sorted(computed))}")
        return self


# --------------------------------------------------------------------------- rerank


class RerankConfig(_Section):
    """Cross-encoder fine-tuning on the same pairs and mined negatives (see docs/rerank.md)."""

    enabled: bool = Field(False, description="add the rerank stage to `domainfit run`")
    base_model: str = Field(
        "cross-encoder/ms-marco-MiniLM-L6-v2",
        description="cross-encoder to start from; offline and not cached: the packaged MiniLM with a fresh 1-logit head",
    )
    loss: Literal["bce", "lambda", "mnrl"] = Field(
        "bce", description="bce on positives and negatives, lambda (listwise LambdaLoss), or mnrl (in-batch negatives)"
    )
    negatives_per_pair: int = Field(3, ge=1, description="mined negatives per training question")
    epochs: float = Field(1.0, gt=0, description="training epochs (the best epoch on validation is kept)")
    max_steps: int = Field(-1, ge=-1, description="stop after this many optimizer steps (-1 = use epochs)")
    batch_size: int = Field(16, ge=2, description="rows (bce/mnrl) or questions (lambda) per batch")
    learning_rate: float = Field(2e-5, gt=0, description="peak learning rate")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="share of steps spent warming up")
    max_length: int = Field(256, ge=16, description="token cap of a (question, chunk) pair")
    top_k: int = Field(50, ge=1, description="candidates the bi-encoder retrieves per query for re-ranking")
    validation: bool = Field(True, description="validate on the val split each epoch and keep the best checkpoint")
    predict_batch_size: int = Field(32, ge=1, description="pairs per forward pass when scoring")
    logging_steps: int = Field(10, ge=1, description="log the loss every N steps")
    seed: int = Field(42, description="training seed")


# --------------------------------------------------------------------------- export


class ExportConfig(_Section):
    """The adapted model at one dim plus a LanceDB table of every chunk, for a RAG stack (docs/export.md)."""

    dim: int | None = Field(None, ge=1, description="embedding dim of the export; unset = the model's full dim")
    quantize: Literal["none", "int8", "binary"] = Field(
        "none", description="also store int8 or binary (bit-packed, hamming) vectors beside the float ones"
    )
    onnx: bool = Field(False, description="also write the encoder as ONNX + int8 dynamic-quantized ONNX, and measure both (needs domainfit[onnx])")
    table: str = Field("chunks", min_length=1, description="LanceDB table name in RUN/export/lancedb")
    ann_min_rows: int = Field(100_000, ge=1, description="tables at least this large get an IVF_PQ index")
    batch_size: int = Field(64, ge=1, description="encoding batch size")


class ReviewConfig(_Section):
    """The local review page."""

    host: str = Field("127.0.0.1", description="interface to bind; other than loopback needs --host")
    port: int = Field(0, ge=0, le=65535, description="port; 0 picks a free one")


# --------------------------------------------------------------------------- encode


_DEVICE_PATTERN = r"^(cpu|cuda|mps|npu|xpu|hpu)(:\d+)?$"


class EncodeConfig(_Section):
    """How mine, eval, rerank and export turn texts into vectors: in this process, or in a pool.

    ``processes = N`` starts N CPU workers, ``devices = ["cuda:0", "cuda:1"]`` one worker
    per device (sentence-transformers' multi-process pool). The vectors are the same as
    in-process ones (to float rounding), so these keys are in no stage's cache key.
    """

    processes: int = Field(1, ge=1, description="CPU worker processes that encode (1 = in this process)")
    devices: list[str] = Field(
        [], description='one encoding worker per device, e.g. ["cuda:0", "cuda:1"] (empty = the model\'s device)'
    )
    pool_min_texts: int = Field(
        4096, ge=0, description="calls with fewer texts encode in this process (starting a pool costs seconds)"
    )

    @field_validator("devices")
    @classmethod
    def _device_names(cls, value: list[str]) -> list[str]:
        import re

        for device in value:
            if not re.match(_DEVICE_PATTERN, device):
                raise ValueError(f"{device!r} is not a device; use names like 'cpu', 'cuda:0', 'cuda:1'")
        return value

    @model_validator(mode="after")
    def _one_way(self) -> "EncodeConfig":
        if self.devices and self.processes > 1:
            raise ValueError("set encode.processes or encode.devices, not both (devices gives one process each)")
        return self

    @property
    def pool_devices(self) -> list[str]:
        """The pool's devices (one worker each), or [] when encoding stays in this process."""
        if self.devices:
            return list(self.devices)
        return ["cpu"] * self.processes if self.processes > 1 else []


# --------------------------------------------------------------------------- run


class RunConfig(_Section):
    """Everything a run needs; one TOML table per section."""

    base_model: str = Field("minilm", description="embedding model: 'minilm', a local dir, or a cached hub id")
    allow_downloads: bool = Field(False, description="let Hugging Face download models (needs network)")
    vector_cache: bool = Field(
        True, description="keep every model's vectors (RUN/vectors; eval --beir: --cache DIR) so no text is encoded twice"
    )
    llm: LLMConfig = Field(default_factory=LLMConfig)
    synth: SynthConfig = Field(default_factory=SynthConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    mining: MiningConfig = Field(default_factory=MiningConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    rerank: RerankConfig = Field(default_factory=RerankConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    encode: EncodeConfig = Field(default_factory=EncodeConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)

    @field_validator("base_model")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a model")
        return value

    def public_dict(self) -> dict[str, Any]:
        """The config as plain data with secrets masked: safe for logs and manifests."""
        data = self.model_dump(mode="json")
        if self.llm.api_key is not None:
            data["llm"]["api_key"] = mask_secret(self.llm.api_key.get_secret_value())
        return data

    def stage_hash(self, stage: str) -> str:
        """The hash of the config sections that govern ``stage`` (see ``artifacts.STAGE_SECTIONS``)."""
        return self.section_hash(*STAGE_SECTIONS[stage])

    def section_hash(self, *sections: str) -> str:
        """A short stable hash of the named sections (plus base_model): a stage's cache key."""
        data = self.model_dump(mode="json")
        data["llm"].pop("api_key", None)
        picked = {"base_model": self.base_model, **{name: data[name] for name in sections}}
        return json_hash(picked)


def mask_secret(secret: str) -> str:
    """``sk-abcdef123456`` -> ``…3456``: at most the last 4 characters; short secrets become ``***``."""
    if len(secret) < 12:
        return "***"
    return f"…{secret[-4:]}"


def check_http_url(value: str) -> str:
    """``value`` if it is an http(s) URL with a host; ValueError (a one-line reason) if not.

    Example::

        check_http_url("http://localhost:8000/v1")   # returned as is
        check_http_url("not a url")                  # ValueError
    """
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as error:
        raise ValueError(f"not a valid URL ({error})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host, e.g. http://localhost:8000/v1")
    return value.strip()


ENV_OVERRIDES: dict[str, str] = {
    "OPENAI_API_KEY": "llm.api_key",
    "OPENAI_BASE_URL": "llm.base_url",
    "DOMAINFIT_LLM_MODEL": "llm.model",
    "DOMAINFIT_BASE_MODEL": "base_model",
}


def load_config(
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> RunConfig:
    """Build a :class:`RunConfig` from a TOML file, the environment and dotted overrides.

    ``overrides`` maps dotted keys (``"train.epochs"``) to values; ``None`` values are
    ignored so CLI flags that were not given do not clobber the file. Raises
    :class:`ConfigError` with one line naming the offending key.
    """
    data: dict[str, Any] = {}
    if path is not None:
        data = read_toml(Path(path))
    env = os.environ if environ is None else environ
    for variable, key in ENV_OVERRIDES.items():
        if env.get(variable):
            _set_dotted(data, key, env[variable], source=variable)
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, key, value, source="command line")
    return validate_config(data)


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML config file; a syntax error names the file and line."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder; give a .toml file") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {error.start}); save it as UTF-8") from None
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None


def validate_config(data: Mapping[str, Any]) -> RunConfig:
    """Validate plain data into a RunConfig, turning pydantic's report into one line."""
    try:
        return RunConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None


def describe_validation_error(error: ValidationError) -> str:
    """First problem of a pydantic ValidationError, as ``config key 'a.b': message``."""
    key, first = first_validation_error(error)
    key = key or "(top level)"
    if first["type"] == "extra_forbidden":
        section = ".".join(str(part) for part in first["loc"][:-1])
        known = _known_keys(section)
        hint = f"; known keys: {', '.join(known)}" if known else ""
        return f"unknown config key '{key}'{hint}"
    message = first["msg"]
    if "input" in first and first["type"] not in ("missing",):
        message += f" (got {first['input']!r})"
    more = len(error.errors()) - 1
    suffix = f" (+{more} more)" if more else ""
    return f"config key '{key}': {message}{suffix}"


def _known_keys(section: str) -> list[str]:
    model: type[BaseModel] = RunConfig
    for part in filter(None, section.split(".")):
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def _set_dotted(data: dict[str, Any], key: str, value: Any, *, source: str) -> None:
    node = data
    *parents, leaf = key.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"config key '{part}' must be a table (set from {source})")
        node = child
    node[leaf] = value


def dump_toml(config: RunConfig, *, mask: bool = True) -> str:
    """Render a config as TOML (secrets masked): what ``--print-config`` shows."""
    data = config.public_dict() if mask else config.model_dump(mode="json")
    top = {key: value for key, value in data.items() if not isinstance(value, dict)}
    lines = [f"{key} = {_toml_value(value)}" for key, value in top.items() if value is not None]
    for section, values in data.items():
        if not isinstance(values, dict):
            continue
        lines.append("")
        lines.append(f"[{section}]")
        for key, value in values.items():
            if value is None:
                lines.append(f"# {key} = (unset)")
            else:
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot render {type(value).__name__} as TOML")


def config_reference() -> str:
    """Every config key with its type, default and description, as a Markdown table.

    The README's configuration table is this function's output (a test keeps them equal).
    """
    rows = ["| key | default | description |", "| --- | --- | --- |"]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, f"{prefix}{name}.")
                continue
            default = field.get_default(call_default_factory=True)
            if isinstance(default, Enum):
                default = default.value
            shown = "unset" if default is None else _toml_value(default)
            description = (field.description or "").replace("|", "\\|")
            rows.append(f"| `{prefix}{name}` | `{shown}` | {description} |")

    walk(RunConfig, "")
    return "\n".join(rows)
