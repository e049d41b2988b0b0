"""domainfit.encoding: one encode for every stage, in this process or in a pool of workers."""

from __future__ import annotations

import numpy as np
import pytest

from domainfit.config import EncodeConfig, load_config
from domainfit.encoding import Encoder, encode
from domainfit.errors import ConfigError

TEXTS = [
    "Contractor passes are valid for twelve months from the date of issue.",
    "How long is a contractor pass valid?",
    "Badges must be returned to reception on the last day of work.",
    "Visitors sign in at the front desk and wear a red lanyard.",
] * 6 + [f"Chunk {i}: the loading bay closes at {i % 12 + 1} pm on weekdays." for i in range(16)]


@pytest.fixture(scope="module")
def minilm(minilm_path):
    from domainfit.models import load_model

    return load_model(str(minilm_path))


def test_in_process_vectors_are_the_models_own(minilm):
    """What mine/export/rerank (normalised) and eval (raw) used to get from the model directly."""
    unit = encode(minilm, TEXTS, kind="document", batch_size=8)
    raw = encode(minilm, TEXTS, kind="query", batch_size=8, normalize=False)
    assert unit.dtype == np.float32 and unit.shape == (len(TEXTS), 384)
    np.testing.assert_array_equal(unit, minilm.encode_document(TEXTS, batch_size=8, normalize_embeddings=True))
    np.testing.assert_array_equal(raw, minilm.encode_query(TEXTS, batch_size=8))
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)
    assert encode(minilm, [], kind="document").shape == (0, 384)


def test_two_cpu_processes_give_the_single_process_vectors(minilm):
    single = encode(minilm, TEXTS, kind="document", batch_size=8)
    settings = EncodeConfig(processes=2, pool_min_texts=len(TEXTS))
    with Encoder(minilm, kind="document", batch_size=8, settings=settings, progress=False) as encoder:
        pooled = encoder(TEXTS)
        assert encoder.pooled
        again = encoder(TEXTS[:3])  # a small call after the pool started still uses it
    assert not encoder.pooled and str(minilm.device) == "cpu"
    np.testing.assert_allclose(pooled, single, atol=1e-6, rtol=0)
    np.testing.assert_allclose(again, single[:3], atol=1e-6, rtol=0)


def test_calls_below_the_threshold_stay_in_process(minilm):
    settings = EncodeConfig(processes=2, pool_min_texts=len(TEXTS) + 1)
    with Encoder(minilm, kind="document", settings=settings) as encoder:
        encoder(TEXTS)
        assert not encoder.pooled


def test_pool_devices_follow_the_settings():
    assert EncodeConfig().pool_devices == []
    assert EncodeConfig(processes=3).pool_devices == ["cpu", "cpu", "cpu"]
    assert EncodeConfig(devices=["cuda:0", "cuda:1"]).pool_devices == ["cuda:0", "cuda:1"]


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"encode.processes": 2, "encode.devices": ["cuda:0"]}, "not both"),
        ({"encode.processes": 0}, "encode.processes"),
        ({"encode.devices": ["gpu0"]}, "'gpu0' is not a device"),
        ({"encode.pool_min_texts": -1}, "encode.pool_min_texts"),
    ],
)
def test_bad_encode_settings_fail_in_one_line(overrides, named):
    with pytest.raises(ConfigError) as error:
        load_config(overrides=overrides, environ={})
    message = str(error.value)
    assert named in message and "\n" not in message
