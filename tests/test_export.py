"""domainfit export: the model at a dim, a LanceDB table of every chunk, and the RAG stacks that read it.

The run is ``tiny_run`` (real financial pairs) with the packaged MiniLM standing in as
``RUN/model`` (a Matryoshka-trained model's dims recorded beside it), so retrieval is
good enough to check that LlamaIndex and LangChain find the right chunk through the
exported table and model.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from domainfit.artifacts import RunDir, read_chunks, read_json, write_json
from domainfit.config import SplitConfig, load_config
from domainfit.errors import ConfigError
from domainfit.export import check_export_dim, quantize_vectors


def test_export_dim_must_be_a_trained_dim_and_not_above_the_model():
    assert check_export_dim(None, 384, [384, 256, 128, 64]) == 384
    assert check_export_dim(128, 384, [384, 256, 128, 64]) == 128
    with pytest.raises(ConfigError, match=r"--dim 100 is not one of the model's Matryoshka dims \(384, 256, 128, 64\)"):
        check_export_dim(100, 384, [384, 256, 128, 64])
    with pytest.raises(ConfigError, match="--dim 512 is above the model's dim 384"):
        check_export_dim(512, 384, [384, 256, 128, 64])
    with pytest.raises(ConfigError, match=r"\(384\)"):
        check_export_dim(128, 384, [])  # Matryoshka off: the full dim only


def test_binary_vectors_pack_eight_dims_a_byte_and_int8_keeps_the_ranking():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    packed, info = quantize_vectors(vectors, "binary")
    assert packed.shape == (50, 8) and packed.dtype == np.uint8 and "hamming" in info["packing"]
    assert np.array_equal(np.unpackbits(packed, axis=1).astype(bool), vectors > 0)
    int8, info = quantize_vectors(vectors, "int8")
    assert int8.dtype == np.int8 and len(info["ranges"]) == 2
    exact = np.argsort(-(vectors @ vectors[0]))[:5]
    approximate = np.argsort(-(int8.astype(np.int32) @ int8[0].astype(np.int32)))[:5]
    assert exact[0] == approximate[0] == 0 and len(set(exact) & set(approximate)) >= 3


def test_export_before_train_is_one_line(tiny_run, capsys):
    from domainfit.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(tiny_run.root), "--dim", "128"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "no trained model in" in err and "run `domainfit train" in err and "Traceback" not in err


@pytest.fixture
def trained_run(tiny_run: RunDir, minilm_path) -> RunDir:
    """``tiny_run`` with splits and MiniLM as its model, Matryoshka dims recorded as train records them."""
    from domainfit.splits import ensure_splits

    ensure_splits(tiny_run, SplitConfig(by="chunk"))
    shutil.copytree(minilm_path, tiny_run.model_dir)
    write_json(tiny_run.model_dir / "domainfit_training.json", {"dims": [384, 256, 128, 64]})
    return tiny_run


def _known_hit(run: RunDir, model) -> tuple[str, str]:
    """A test question (and its chunk id) whose own chunk the exported model ranks first, by exact search."""
    from domainfit.splits import read_splits
    from domainfit.review import reviewed_pairs

    chunks = read_chunks(run.chunks)
    vectors = model.encode_document([chunk.text for chunk in chunks], normalize_embeddings=True)
    pairs = {pair.pair_id: pair for pair in reviewed_pairs(run)[0]}
    for pair_id in read_splits(run).test:
        pair = pairs[pair_id]
        query = model.encode_query([pair.query], normalize_embeddings=True)[0]
        if chunks[int(np.argmax(vectors @ query))].chunk_id == pair.chunk_id:
            return pair.query, pair.chunk_id
    raise AssertionError("no test question is answered first by its own chunk")


@pytest.mark.slow
def test_export_writes_a_model_at_the_dim_and_a_table_llamaindex_and_langchain_search(trained_run, capsys):
    from sentence_transformers import SentenceTransformer

    from domainfit.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(trained_run.root), "--dim", "128", "--quantize", "binary", "--no-progress"])
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "at dim 128 (of 384)" in printed and "pytorch" in printed

    export = trained_run.export_dir
    model = SentenceTransformer(str(export / "model"), device="cpu")
    assert model.encode(["What was the revenue?"]).shape == (1, 128)
    assert "## Exported with domainfit" in (export / "model" / "README.md").read_text(encoding="utf-8")
    meta = read_json(export / "domainfit_export.json")
    chunks = read_chunks(trained_run.chunks)
    assert meta["dim"] == 128 and meta["rows"] == len(chunks) and meta["ann_index"] is None
    assert 0 < meta["measurements"]["pytorch"]["ndcg@10"] <= 1 and meta["test_queries"] > 0

    import lancedb

    table = lancedb.connect(str(export / "lancedb")).open_table("chunks")
    stored = table.to_arrow()
    assert set(stored.column("chunk_id").to_pylist()) == {chunk.chunk_id for chunk in chunks}
    assert stored.schema.field("vector").type.list_size == 128
    assert stored.schema.field("vector_binary").type.list_size == 16
    norms = np.linalg.norm(np.array(stored.column("vector").to_pylist()), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-4)

    question, chunk_id = _known_hit(trained_run, model)
    by_id = {chunk.chunk_id: chunk for chunk in chunks}

    from llama_index.core import VectorStoreIndex
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.lancedb import LanceDBVectorStore

    embed = HuggingFaceEmbedding(model_name=str(export / "model"), device="cpu")
    store = LanceDBVectorStore(uri=str(export / "lancedb"), table_name="chunks", mode="append")
    index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
    hits = index.as_retriever(similarity_top_k=3).retrieve(question)
    assert hits[0].node.node_id == chunk_id
    assert hits[0].node.get_content() == by_id[chunk_id].text
    assert hits[0].node.metadata["source"] == by_id[chunk_id].source

    from langchain_community.embeddings import HuggingFaceEmbeddings
    from langchain_community.vectorstores import LanceDB

    embeddings = HuggingFaceEmbeddings(model_name=str(export / "model"), encode_kwargs={"normalize_embeddings": True})
    connection = lancedb.connect(str(export / "lancedb"))
    documents = LanceDB(connection=connection, embedding=embeddings, table_name="chunks").similarity_search(question, k=3)
    assert documents[0].metadata["chunk_id"] == chunk_id and documents[0].page_content == by_id[chunk_id].text


def test_binary_at_a_dim_that_is_not_a_multiple_of_eight_fails(trained_run):
    from domainfit.export import run_export

    write_json(trained_run.model_dir / "domainfit_training.json", {"dims": [384, 100]})
    with pytest.raises(ConfigError, match="--dim 100 is not a multiple of 8"):
        run_export(trained_run, load_config(overrides={"export.dim": 100, "export.quantize": "binary"}, environ={}))
