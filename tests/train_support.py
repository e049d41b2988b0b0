"""Helpers for the training tests: a tiny real model and a real triplets.parquet.

The tiny model is a 2-layer BERT (hidden 128) built from a config, with the packaged
MiniLM's tokenizer, saved as a sentence-transformers folder: it trains in seconds
on a CPU, and its 128-dim output gives Matryoshka dims [128, 64].
"""

from __future__ import annotations

import random
from pathlib import Path

from domainfit.artifacts import Chunk, Pair, RunDir, read_chunks, read_rows, write_parquet

TINY_DIM = 128


def build_tiny_model(folder: Path) -> Path:
    """Save a randomly initialised 2-layer BERT sentence-transformer to ``folder/st``."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    from domainfit.models import resolve

    target = folder / "st"
    if (target / "modules.json").exists():
        return target
    backbone = folder / "hf"
    tokenizer = AutoTokenizer.from_pretrained(str(resolve("minilm")))
    tokenizer.save_pretrained(str(backbone))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=TINY_DIM,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=256,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(backbone))
    transformer = Transformer(str(backbone), max_seq_length=64)
    SentenceTransformer(modules=[transformer, Pooling(TINY_DIM, "mean"), Normalize()]).save(str(target))
    return target


def write_triplets(run: RunDir, *, fmt: str = "n-tuple", n: int = 2, holes: int = 0, seed: int = 0) -> int:
    """Write ``run.triplets`` in the mining stage's schema, negatives drawn from other chunks.

    ``holes`` pairs get only one negative (null after it), as the miner leaves pairs
    with fewer candidates than asked. Returns the number of rows written.
    """
    rng = random.Random(seed)
    chunks: list[Chunk] = read_chunks(run.chunks)
    pairs: list[Pair] = read_rows(run.pairs, Pair)
    text_of = {chunk.chunk_id: chunk.text for chunk in chunks}
    rows = []
    for index, pair in enumerate(pairs):
        others = rng.sample([c for c in chunks if c.chunk_id != pair.chunk_id], n)
        base = {
            "pair_id": pair.pair_id,
            "split": "train",
            "anchor": pair.query,
            "positive": text_of[pair.chunk_id],
            "positive_id": pair.chunk_id,
            "positive_score": 0.8,
        }
        if fmt == "triplet":
            rows += [
                {**base, "negative": c.text, "negative_id": c.chunk_id, "negative_score": 0.5} for c in others
            ]
            continue
        row = dict(base)
        for k, chunk in enumerate(others, start=1):
            missing = index < holes and k > 1
            row[f"negative_{k}"] = None if missing else chunk.text
            row[f"negative_{k}_id"] = None if missing else chunk.chunk_id
            row[f"negative_{k}_score"] = None if missing else 0.5
        rows.append(row)
    write_parquet(run.triplets, rows)
    return len(rows)
