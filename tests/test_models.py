"""Models resolve offline: the packaged MiniLM, local folders, and a fast error otherwise."""

from __future__ import annotations

import time

import pytest

from domainfit.errors import ModelNotFoundError
from domainfit.models import load_model, model_fingerprint, resolve


def test_minilm_resolves_to_the_packaged_folder(minilm_path):
    assert (minilm_path / "modules.json").exists()
    assert resolve("sentence-transformers/all-MiniLM-L6-v2") == minilm_path


def test_local_folder_is_used_as_is(minilm_path):
    assert resolve(str(minilm_path)) == minilm_path


def test_folder_that_is_not_a_model_is_rejected(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not a sentence-transformers model folder"):
        resolve(str(tmp_path))


def test_uncached_hub_id_fails_fast_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("DOMAINFIT_ALLOW_DOWNLOADS", raising=False)
    start = time.perf_counter()
    with pytest.raises(ModelNotFoundError) as error:
        resolve("BAAI/bge-small-en-v1.5")
    assert time.perf_counter() - start < 1.0
    message = str(error.value)
    assert "unreachable" in message and "local" in message and "\n" not in message


def test_downloads_opt_in_passes_the_hub_id_through(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert resolve("BAAI/bge-small-en-v1.5", allow_downloads=True) == "BAAI/bge-small-en-v1.5"


def test_load_model_encodes_offline():
    model = load_model("minilm")
    vectors = model.encode(["a turbine controller"], normalize_embeddings=True)
    assert vectors.shape == (1, 384)


def test_fingerprint_is_stable(minilm_path):
    assert model_fingerprint(minilm_path) == model_fingerprint(minilm_path)
