"""The frozen MiniLM encoder loads offline from its PyPI package and caches embeddings."""

import numpy as np
import pytest

from metaecom.encoder import SentenceEncoder


@pytest.fixture(scope="module")
def encoder():
    return SentenceEncoder(device="cpu")


def test_offline_model_embeds_with_meaning(encoder, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("METAECOM_DATA_CACHE", str(tmp_path))
    texts = ["Where is my parcel?", "My package has not arrived yet.", "How do I change my PIN code?"]
    vectors = encoder.encode(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2  # two delivery questions vs a PIN question
    assert "Loading weights" not in capfd.readouterr().err
    assert encoder.last_throughput > 0


def test_second_encode_comes_from_the_cache(encoder, tmp_path, monkeypatch):
    monkeypatch.setenv("METAECOM_DATA_CACHE", str(tmp_path))
    first = encoder.encode(["gift card balance", "refund for a broken item"])

    def fail(texts):
        raise AssertionError("the model was called although the embeddings are cached")

    monkeypatch.setattr(encoder, "encode_uncached", fail)
    np.testing.assert_array_equal(encoder.encode(["gift card balance", "refund for a broken item"]), first)
    path = encoder.cache_path(["gift card balance", "refund for a broken item"])
    assert path.parent.parent == tmp_path and np.array_equal(np.load(path), first)
    assert encoder.cache_path(["gift card balance"]) != path


def test_empty_input_is_refused(encoder):
    with pytest.raises(ValueError, match="at least one text"):
        encoder.encode([])
