"""The ``domainfit`` command line: parse flags, call the Python API, print.

Every verb takes ``--config run.toml`` and a run directory (``--out``); flags
override the file. Errors a user can fix print one line; ``--debug`` shows the
traceback.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.console import Console
from rich.markup import escape

from . import __version__
from .artifacts import RunDir
from .config import RunConfig, dump_toml, load_config
from .errors import DomainfitError

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

app = typer.Typer(
    name="domainfit",
    help="Adapt an embedding model to your documents: synth -> review -> mine -> train -> eval, or `run` for all.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = typer.Option(None, "--config", "-c", help="TOML config file (one table per stage).", exists=False)
BaseModelOption = typer.Option(None, "--base-model", help="Embedding model: 'minilm', a local dir, or a cached hub id.")
QueriesOption = typer.Option(
    None, "--queries", help='Real queries, JSONL: {"query": "...", "relevant": ["path/in/DOCS"]} per line; never trained on.'
)


def _version(value: bool) -> None:
    if value:
        console.print(f"domainfit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    if debug:
        os.environ["DOMAINFIT_DEBUG"] = "1"


def _config(config_path: Optional[Path], overrides: dict[str, Any]) -> RunConfig:
    return load_config(config_path, overrides)


def _run_dir(run: Optional[Path], out: Optional[Path]) -> RunDir:
    chosen = out or run
    if chosen is None:
        raise typer.BadParameter("give the run directory (RUN or --out RUN_DIR)")
    return RunDir(chosen)


def _queries_path(queries: Optional[Path]) -> Optional[str]:
    return None if queries is None else str(queries.expanduser().resolve())


def _split_dims(dims: Optional[str]) -> Optional[list[int]]:
    if dims is None:
        return None
    try:
        return [int(part) for part in dims.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"--dims takes comma-separated integers, got {dims!r}") from None


@app.command()
def synth(
    docs: Path = typer.Argument(..., help="Folder of documents (txt, md, html, pdf, docx)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory to write."),
    config: Optional[Path] = ConfigOption,
    base_model: Optional[str] = BaseModelOption,
    llm_base_url: Optional[str] = typer.Option(None, help="OpenAI-compatible endpoint; unset = local llama.cpp."),
    llm_model: Optional[str] = typer.Option(None, help="Model name at the endpoint."),
    prompt_style: Optional[str] = typer.Option(None, help="auto, tools, json or completion."),
    llm_mode: Optional[str] = typer.Option(None, help="live (a request per chunk) or batch (one Batch API job, polled)."),
    questions_per_chunk: Optional[int] = typer.Option(None, help="Questions asked per chunk."),
    max_concurrency: Optional[int] = typer.Option(None, help="Requests in flight at once."),
    max_chunks: Optional[int] = typer.Option(None, help="Only send the first N chunks to the LLM."),
    temperature: Optional[float] = typer.Option(None, help="Sampling temperature (local default 0.2)."),
    token_budget: Optional[int] = typer.Option(None, help="Stop cleanly after this many tokens (resumable)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Chunk DOCS and have an LLM write validated questions for each chunk; re-run to resume.

    The API key comes from OPENAI_API_KEY (or llm.api_key in --config); with no
    --llm-base-url a local llama.cpp server with Gemma 3 270M (demo quality) is used.
    """
    from .synth import run_synth

    cfg = _config(
        config,
        {
            "base_model": base_model,
            "llm.base_url": llm_base_url,
            "llm.model": llm_model,
            "llm.prompt_style": prompt_style,
            "llm.mode": llm_mode,
            "llm.temperature": temperature,
            "synth.questions_per_chunk": questions_per_chunk,
            "llm.max_concurrency": max_concurrency,
            "synth.max_chunks": max_chunks,
            "synth.token_budget": token_budget,
        },
    )
    result = run_synth(docs, RunDir(out), cfg, progress=progress)
    console.print(result.summary(), highlight=False, markup=False)


@app.command("synth-yield")
def synth_yield(
    run: Path = typer.Argument(..., help="Run directory with pairs.jsonl and rejected.jsonl."),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON instead of a table."),
) -> None:
    """Print how many generated queries each check rejected, and how many were kept, per query style."""
    import json

    from .synth.yields import synth_yield as count_yield

    report = count_yield(RunDir(run))
    if as_json:
        console.print(json.dumps(report.counts(), indent=2), highlight=False, markup=False)
    else:
        console.print(report.table(), highlight=False, markup=False)


@app.command()
def review(
    run: Optional[Path] = typer.Argument(None, help="Run directory with pairs.jsonl."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (same as RUN)."),
    config: Optional[Path] = ConfigOption,
    host: Optional[str] = typer.Option(
        None, help="Interface to bind (default 127.0.0.1); any other host only when named here, with a warning."
    ),
    port: Optional[int] = typer.Option(None, help="Port (default: a free one)."),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in a browser."),
) -> None:
    """Serve a local page to accept, reject and edit generated pairs; prints its URL with a token."""
    from .review import run_review

    cfg = _config(config, {"review.host": host, "review.port": port})
    summary = run_review(
        _run_dir(run, out),
        host=cfg.review.host,
        port=cfg.review.port,
        open_browser=open_browser,
        allow_remote=host is not None,
    )
    console.print(summary.summary(), highlight=False, markup=False)


@app.command()
def mine(
    run: Optional[Path] = typer.Argument(None, help="Run directory with chunks.parquet and pairs.jsonl."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (same as RUN)."),
    config: Optional[Path] = ConfigOption,
    base_model: Optional[str] = BaseModelOption,
    strategy: Optional[str] = typer.Option(None, help="hard, semi-hard or random."),
    num_negatives: Optional[int] = typer.Option(None, help="Negatives per pair."),
    range_min: Optional[int] = typer.Option(None, help="Skip this many top candidates (hard, random)."),
    range_max: Optional[int] = typer.Option(None, help="Candidates retrieved per query."),
    relative_margin: Optional[float] = typer.Option(None, help="Keep negatives below pos*(1-m)."),
    output_format: Optional[str] = typer.Option(None, help="n-tuple (one row per pair) or triplet (one per negative)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Index chunks in LanceDB and mine hard negatives for the training pairs."""
    from .mining import run_mining

    cfg = _config(
        config,
        {
            "base_model": base_model,
            "mining.strategy": strategy,
            "mining.num_negatives": num_negatives,
            "mining.range_min": range_min,
            "mining.range_max": range_max,
            "mining.relative_margin": relative_margin,
            "mining.output_format": output_format,
        },
    )
    result = run_mining(_run_dir(run, out), cfg, progress=progress)
    console.print(result.summary())


@app.command()
def train(
    run: Optional[Path] = typer.Argument(None, help="Run directory with splits and (optionally) triplets."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (same as RUN)."),
    config: Optional[Path] = ConfigOption,
    base_model: Optional[str] = BaseModelOption,
    loss: Optional[str] = typer.Option(None, help="cached-mnrl, mnrl or triplet."),
    epochs: Optional[float] = typer.Option(None, help="Training epochs."),
    max_steps: Optional[int] = typer.Option(None, help="Stop after N optimizer steps."),
    batch_size: Optional[int] = typer.Option(None, help="Pairs per batch per device (MNRL's in-batch negatives)."),
    mini_batch_size: Optional[int] = typer.Option(None, help="cached-mnrl: texts per forward pass."),
    learning_rate: Optional[float] = typer.Option(None, help="Peak learning rate."),
    negatives_per_pair: Optional[int] = typer.Option(None, help="Mined negatives used per pair (0 = none)."),
    max_seq_length: Optional[int] = typer.Option(None, help="Token cap per text."),
    dims: Optional[str] = typer.Option(None, help="Matryoshka dims, e.g. 384,256,128,64 ('' = off)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Fine-tune the base model on the training split; re-run to resume from the last checkpoint.

    Multi-GPU: the same command under `torchrun --nproc_per_node=N -m domainfit.cli train RUN`
    or `accelerate launch -m domainfit.cli train RUN`.
    """
    from .train import run_training

    cfg = _config(
        config,
        {
            "base_model": base_model,
            "train.loss": loss,
            "train.epochs": epochs,
            "train.max_steps": max_steps,
            "train.batch_size": batch_size,
            "train.mini_batch_size": mini_batch_size,
            "train.learning_rate": learning_rate,
            "train.negatives_per_pair": negatives_per_pair,
            "train.max_seq_length": max_seq_length,
            "train.matryoshka_dims": _split_dims(dims),
        },
    )
    result = run_training(_run_dir(run, out), cfg, progress=progress)
    if result.is_main_process:
        console.print(result.summary(), highlight=False, markup=False)


@app.command("eval")
def evaluate(
    run: Optional[Path] = typer.Argument(None, help="Run directory (not needed with --beir)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where eval/ is written (default: RUN)."),
    config: Optional[Path] = ConfigOption,
    base_model: Optional[str] = BaseModelOption,
    model: Optional[List[str]] = typer.Option(
        None, "--model", "-m", help="Extra model to compare, LABEL=PATH or PATH ('minilm' = base); repeatable."
    ),
    beir: Optional[Path] = typer.Option(None, "--beir", help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv)."),
    dims: Optional[str] = typer.Option(None, help="Dims to report, e.g. 384,256,128,64."),
    bm25: Optional[bool] = typer.Option(None, "--bm25/--no-bm25", help="Include the BM25 baseline."),
    split_by: Optional[str] = typer.Option(None, "--split-by", help="document, chunk or query (new splits only)."),
    batch_size: Optional[int] = typer.Option(None, help="Encoding batch size."),
    queries: Optional[Path] = QueriesOption,
    cache: Optional[Path] = typer.Option(
        None, "--cache", help="Vector cache folder (default: RUN/vectors; with --beir ~/.cache/domainfit/vectors)."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Keep no vectors: encode every text."),
) -> None:
    """Measure retrieval on held-out queries: base vs fine-tuned vs BM25, at every dim.

    With --queries FILE, real queries judged by document are the headline (last table).
    Vectors are cached per model and text, so a second call encodes only what changed.
    """
    from .evaluate import evaluate_beir, run_evaluation
    from .vectors import VectorCache

    cfg = _config(
        config,
        {
            "base_model": base_model,
            "eval.dims": _split_dims(dims),
            "eval.bm25": bm25,
            "split.by": split_by,
            "eval.batch_size": batch_size,
            "eval.queries": _queries_path(queries),
            "vector_cache": False if no_cache else None,
        },
    )
    vectors = VectorCache(cache) if cache is not None and not no_cache else None
    if beir is not None:
        if queries is not None:
            raise typer.BadParameter("--queries is for a run directory; a BEIR folder brings its own queries")
        target = out or run
        if target is None:
            raise typer.BadParameter("--beir needs --out OUT for the results")
        result = evaluate_beir(beir, RunDir(target), cfg, models=model or [], cache=vectors)
    else:
        run_dir = _run_dir(run, None)
        result = run_evaluation(run_dir, cfg, models=model or [], out=RunDir(out) if out else None, cache=vectors)
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    for table in result.tables():
        console.print(table)
    console.print(result.summary(), highlight=False)


@app.command("rerank")
def rerank(
    run: Optional[Path] = typer.Argument(None, help="Run directory with splits (and triplets.parquet from mine)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (same as RUN)."),
    config: Optional[Path] = ConfigOption,
    base_model: Optional[str] = BaseModelOption,
    reranker: Optional[str] = typer.Option(
        None, "--reranker", help="Cross-encoder to start from: a CrossEncoder folder, a cached hub id, or 'minilm'."
    ),
    loss: Optional[str] = typer.Option(None, help="bce, lambda or mnrl."),
    epochs: Optional[float] = typer.Option(None, help="Training epochs."),
    max_steps: Optional[int] = typer.Option(None, help="Stop after N optimizer steps."),
    batch_size: Optional[int] = typer.Option(None, help="Rows (bce, mnrl) or questions (lambda) per batch."),
    learning_rate: Optional[float] = typer.Option(None, help="Peak learning rate."),
    top_k: Optional[int] = typer.Option(None, help="Candidates the bi-encoder retrieves for re-ranking."),
    queries: Optional[Path] = QueriesOption,
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Fine-tune a cross-encoder re-ranker on the train split; report dense vs dense + re-ranker on test.

    With --queries FILE (or eval.queries), the real queries are re-ranked too, judged by document.
    """
    from .rerank import run_rerank

    cfg = _config(
        config,
        {
            "base_model": base_model,
            "rerank.base_model": reranker,
            "rerank.loss": loss,
            "rerank.epochs": epochs,
            "rerank.max_steps": max_steps,
            "rerank.batch_size": batch_size,
            "rerank.learning_rate": learning_rate,
            "rerank.top_k": top_k,
            "eval.queries": _queries_path(queries),
        },
    )
    result = run_rerank(_run_dir(run, out), cfg, progress=progress)
    console.print(result.summary(), highlight=False, markup=False)


@app.command("export")
def export(
    run: Optional[Path] = typer.Argument(None, help="Run directory with a trained model (RUN/model)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (same as RUN)."),
    config: Optional[Path] = ConfigOption,
    dim: Optional[int] = typer.Option(None, "--dim", help="Embedding dim: the model's or one of its Matryoshka dims."),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="Also store int8 or binary vectors (none, int8, binary)."),
    onnx: Optional[bool] = typer.Option(None, "--onnx/--no-onnx", help="Also write ONNX and int8-quantized ONNX."),
    table: Optional[str] = typer.Option(None, "--table", help="LanceDB table name (default chunks)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Write RUN/export/: the model at --dim and a LanceDB table of every chunk, for a RAG stack."""
    from .export import run_export

    cfg = _config(
        config, {"export.dim": dim, "export.quantize": quantize, "export.onnx": onnx, "export.table": table}
    )
    result = run_export(_run_dir(run, out), cfg, progress=progress)
    console.print(result.summary(), highlight=False, markup=False)


@app.command("run")
def run_all(
    docs: Optional[Path] = typer.Argument(None, help="Folder of documents."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (default runs/<folder name>)."),
    config: Optional[Path] = ConfigOption,
    base_model: Optional[str] = BaseModelOption,
    llm_base_url: Optional[str] = typer.Option(None, help="OpenAI-compatible endpoint; unset = local llama.cpp."),
    llm_model: Optional[str] = typer.Option(None, help="Model name at the endpoint."),
    loss: Optional[str] = typer.Option(None, help="cached-mnrl, mnrl or triplet."),
    epochs: Optional[float] = typer.Option(None, help="Training epochs."),
    from_stage: Optional[str] = typer.Option(None, "--from", help="Redo from this stage on (synth, split, mine, train, eval)."),
    queries: Optional[Path] = QueriesOption,
    print_config: bool = typer.Option(False, "--print-config", help="Print the resolved config (secrets masked) and exit."),
) -> None:
    """Do everything: synth -> split -> mine -> baseline eval -> train -> eval -> report; resumes."""
    cfg = _config(
        config,
        {
            "base_model": base_model,
            "llm.base_url": llm_base_url,
            "llm.model": llm_model,
            "train.loss": loss,
            "train.epochs": epochs,
            "eval.queries": _queries_path(queries),
        },
    )
    if print_config:
        console.print(dump_toml(cfg), markup=False, highlight=False, end="")
        return
    if docs is None:
        raise typer.BadParameter("give the document folder: domainfit run DOCS --out RUN")
    from .pipeline import run_pipeline

    run_dir = RunDir(out or Path("runs") / docs.resolve().name)
    result = run_pipeline(docs, run_dir, cfg, from_stage=from_stage)
    console.print(result.summary())


INTERRUPTED = "interrupted: finished work is saved; run the same command to resume"

_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
"""Write errors a user fixes by freeing space or picking another --out: one line, no traceback."""


def main(argv: Optional[list[str]] = None) -> None:
    """Console-script entry point: run the app, print DomainfitErrors as one line."""
    try:
        app(args=argv, standalone_mode=True)
    except DomainfitError as error:
        if os.environ.get("DOMAINFIT_DEBUG") == "1":
            raise
        err_console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False)
        sys.exit(2)
    except OSError as error:
        if error.errno not in _DISK_ERRNOS or os.environ.get("DOMAINFIT_DEBUG") == "1":
            raise
        where = f"{error.filename}: " if error.filename else ""
        err_console.print(f"[bold red]error:[/] {escape(f'cannot write {where}{error.strerror}')}", highlight=False)
        sys.exit(2)
    except SystemExit as stop:
        if stop.code == 130:  # typer turns Ctrl-C into Exit(130) before it reaches us
            err_console.print(INTERRUPTED, highlight=False)
        raise
    except KeyboardInterrupt:
        err_console.print(INTERRUPTED, highlight=False)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
