"""The vector cache: real MiniLM, real LanceDB; hits, misses, other models, damage and two writers."""

from __future__ import annotations

import multiprocessing
import shutil
from pathlib import Path

import numpy as np
import pytest

from domainfit.artifacts import content_hash
from domainfit.errors import CacheError
from domainfit.vectors import EncoderKey, VectorCache, text_key
from train_support import build_tiny_model

TEXTS = [
    "The revenue grew by 12% in fiscal 2023.",
    "Operating expenses include research and development.",
    "The company repurchased shares in the fourth quarter.",
]


class Counting:
    """An encode function that records every batch it was asked for."""

    def __init__(self, model, kind: str = "document"):
        self.model, self.kind, self.calls = model, kind, []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        method = self.model.encode_query if self.kind == "query" else self.model.encode_document
        return method(texts, convert_to_numpy=True)


@pytest.fixture(scope="module")
def minilm():
    from domainfit.models import load_model

    return load_model("minilm")


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def test_second_lookup_encodes_nothing_and_returns_the_same_vectors(tmp_path, minilm, minilm_path):
    cache, key, encode = VectorCache(tmp_path / "cache"), EncoderKey.of(minilm_path, minilm), Counting(minilm)
    first = cache.get_or_encode(key, TEXTS, "document", encode)
    assert first.dtype == np.float32 and first.shape == (3, 384)
    np.testing.assert_allclose(first, minilm.encode_document(TEXTS, convert_to_numpy=True), atol=1e-6)

    again = VectorCache(tmp_path / "cache")  # a new process would open it the same way
    second = again.get_or_encode(key, TEXTS, "document", encode)
    assert len(encode.calls) == 1 and again.counts() == {"texts_encoded": 0, "texts_reused": 3}
    np.testing.assert_array_equal(first, second)


def test_only_a_changed_text_is_encoded_and_order_and_duplicates_are_kept(tmp_path, minilm, minilm_path):
    cache, key, encode = VectorCache(tmp_path / "cache"), EncoderKey.of(minilm_path, minilm), Counting(minilm)
    cache.get_or_encode(key, TEXTS, "document", encode)
    changed = [TEXTS[2], TEXTS[0] + " Net income fell.", TEXTS[2]]
    vectors = cache.get_or_encode(key, changed, "document", encode)
    assert encode.calls[-1] == [TEXTS[0] + " Net income fell."]
    np.testing.assert_allclose(vectors, minilm.encode_document(changed, convert_to_numpy=True), atol=1e-6)
    assert (cache.encoded, cache.reused) == (4, 1)


def test_query_and_document_vectors_are_kept_apart(tmp_path, minilm, minilm_path):
    cache, key = VectorCache(tmp_path / "cache"), EncoderKey.of(minilm_path, minilm)
    cache.get_or_encode(key, TEXTS, "document", Counting(minilm))
    as_queries = Counting(minilm, "query")
    cache.get_or_encode(key, TEXTS, "query", as_queries)
    assert as_queries.calls == [TEXTS]
    assert text_key("query", TEXTS[0]) != text_key("document", TEXTS[0])


def test_the_key_without_a_loaded_model_equals_the_key_with_it(minilm, minilm_path):
    assert EncoderKey.of(minilm_path) == EncoderKey.of(minilm_path, minilm)
    assert EncoderKey.of(minilm_path).max_seq_length == 256


def test_another_model_never_gets_the_base_rows(tmp_path, minilm, minilm_path, tiny_model_dir):
    from domainfit.models import load_model

    cache = VectorCache(tmp_path / "cache")
    cache.get_or_encode(EncoderKey.of(minilm_path, minilm), TEXTS, "document", Counting(minilm))
    tiny = load_model(tiny_model_dir)
    encode = Counting(tiny)
    vectors = cache.get_or_encode(EncoderKey.of(tiny_model_dir, tiny), TEXTS, "document", encode)
    assert encode.calls == [TEXTS] and vectors.shape[1] == tiny.get_embedding_dimension() != 384


def test_retrained_weights_of_the_same_size_get_new_rows(tmp_path, tiny_model_dir):
    """A fine-tuned copy has its base's file sizes; only the bytes tell them apart."""
    from safetensors.torch import load_file, save_file

    from domainfit.models import load_model

    cache = VectorCache(tmp_path / "cache")
    base = load_model(tiny_model_dir)
    base_vectors = cache.get_or_encode(EncoderKey.of(tiny_model_dir), TEXTS, "document", Counting(base))
    tuned_dir = tmp_path / "tuned"
    shutil.copytree(tiny_model_dir, tuned_dir)
    weights = next(tuned_dir.rglob("*.safetensors"))
    tensors = load_file(str(weights))
    name = next(name for name, tensor in tensors.items() if tensor.ndim == 2 and "embeddings" in name)
    tensors[name] = tensors[name] * 1.5
    size = weights.stat().st_size
    save_file(tensors, str(weights), metadata={"format": "pt"})
    assert weights.stat().st_size == size
    tuned = load_model(tuned_dir)
    encode = Counting(tuned)
    tuned_vectors = cache.get_or_encode(EncoderKey.of(tuned_dir), TEXTS, "document", encode)
    assert encode.calls == [TEXTS]
    assert not np.allclose(base_vectors, tuned_vectors, atol=1e-4)


def test_a_damaged_table_is_set_aside_and_built_again(tmp_path, minilm, minilm_path):
    root, key = tmp_path / "cache", EncoderKey.of(minilm_path, minilm)
    VectorCache(root).get_or_encode(key, TEXTS, "document", Counting(minilm))
    for data_file in (root / f"{key.table}.lance").rglob("*.lance"):
        data_file.write_bytes(b"not lance data")
    cache, encode = VectorCache(root), Counting(minilm)
    vectors = cache.get_or_encode(key, TEXTS, "document", encode)
    assert encode.calls == [TEXTS] and len(cache.rebuilt) == 1 and key.table in cache.rebuilt[0]
    np.testing.assert_allclose(vectors, minilm.encode_document(TEXTS, convert_to_numpy=True), atol=1e-6)
    assert VectorCache(root).get_or_encode(key, TEXTS, "document", encode).shape == (3, 384)
    assert len(encode.calls) == 1  # the rebuilt table serves the next lookup


def test_a_cache_folder_that_cannot_be_written_is_one_line(tmp_path, minilm, minilm_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(CacheError, match=r"^vector cache .* cannot be written .*--no-cache$"):
        VectorCache(blocker / "cache").get_or_encode(EncoderKey.of(minilm_path, minilm), TEXTS, "document",
                                                     Counting(minilm))


def test_disabled_cache_encodes_everything_and_counts_it(minilm, minilm_path):
    cache, encode = VectorCache.disabled(), Counting(minilm)
    cache.get_or_encode(EncoderKey.of(minilm_path, minilm), TEXTS, "document", encode)
    cache.get_or_encode(EncoderKey.of(minilm_path, minilm), TEXTS, "document", encode)
    assert len(encode.calls) == 2 and cache.counts() == {"texts_encoded": 6, "texts_reused": 0}


def _fake_vectors(texts: list[str]) -> np.ndarray:
    """A deterministic 8-dim vector per text (no model: the test is about the table)."""
    return np.stack([np.random.default_rng(int(content_hash(text), 16)).random(8, dtype=np.float32) for text in texts])


def _write_many(root: str, start: int, barrier) -> None:
    cache = VectorCache(Path(root))
    key = EncoderKey("concurrency", 64)
    barrier.wait()
    for batch in range(6):
        texts = [f"text {number}" for number in range(start + batch * 20, start + batch * 20 + 40)]
        cache.get_or_encode(key, texts, "document", _fake_vectors)


def test_two_processes_writing_one_cache_both_land_their_rows(tmp_path):
    context = multiprocessing.get_context("spawn")  # fresh processes: a forked LanceDB runtime is not safe
    barrier = context.Barrier(2)
    writers = [context.Process(target=_write_many, args=(str(tmp_path), start, barrier)) for start in (0, 60)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(120)
        assert writer.exitcode == 0
    texts = [f"text {number}" for number in range(0, 60 + 6 * 20 + 20)]
    cache = VectorCache(tmp_path)
    vectors = cache.get_or_encode(EncoderKey("concurrency", 64), texts, "document", _fake_vectors)
    assert cache.encoded == 0
    np.testing.assert_array_equal(vectors, _fake_vectors(texts))
