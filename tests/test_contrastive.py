"""Contrastive fine-tuning of MiniLM's top layers with sentence-transformers' trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metaecom.methods.contrastive import contrastive_fine_tune, setfit_fine_tune, setfit_pairs

BRANDS = ["Bosch", "Siemens", "Miele", "Beko", "Hotpoint", "Indesit", "Smeg", "Zanussi"]


@pytest.mark.slow
def test_fine_tuning_trains_only_the_top_layers_and_restores_the_kept_weights():
    anchors = [f"{b} dishwasher SMS{i}2 white 60cm" for i, b in enumerate(BRANDS)] * 4
    positives = [f"{b} SMS{i}2 freestanding dish washer" for i, b in enumerate(BRANDS)] * 4
    validation = (positives[:8], anchors[:8], [[i] for i in range(8)])
    tuned = contrastive_fine_tune(anchors, positives, validation, top_layers=1, max_steps=4, eval_every=2,
                                  batch_size=8, learning_rate=1e-3)
    assert tuned.curve["step"].tolist() == [0, 2, 4]
    assert tuned.curve.set_index("step").loc[tuned.kept_step, "validation"] == tuned.curve["validation"].max()
    vectors = tuned.encode(["Bosch SMS02 dishwasher"])
    assert vectors.shape == (1, 384) and np.isclose(np.linalg.norm(vectors), 1, atol=1e-5)
    from metaecom.encoder import SentenceEncoder

    base = SentenceEncoder()._load()[0].auto_model.encoder.layer
    layers = tuned.model[0].auto_model.encoder.layer
    same = lambda a, b: all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))  # noqa: E731
    assert all(same(low, low_base) for low, low_base in zip(layers[:-1], base[:-1]))
    assert layers[0].attention is not base[0].attention  # a copy: the shared encoder is untouched
    # kept the start: the top layer is exactly the pretrained one; kept a later check: it moved
    assert same(layers[-1], base[-1]) == (tuned.kept_step == 0)


def test_fine_tuning_refuses_bad_input_before_loading_anything():
    with pytest.raises(ValueError, match="3 anchors but 2 positives"):
        contrastive_fine_tune(["a", "b", "c"], ["a", "b"], ([], [], []))
    with pytest.raises(ValueError, match="cannot fill one batch"):
        contrastive_fine_tune(["a"] * 3, ["b"] * 3, ([], [], []), batch_size=8)


def test_setfit_pairs_pair_every_text_with_its_own_label_and_with_another():
    texts = ["refund please", "money back", "where is my parcel", "track order", "late box", "cancel it"]
    labels = np.array(["refund", "refund", "delivery", "delivery", "delivery"])
    pairs = setfit_pairs(texts[:5], labels, iterations=3, seed=1)
    label_of = dict(zip(texts[:5], labels))
    assert len(pairs) == 2 * 3 * 5
    assert pairs["first"].value_counts().to_dict() == {t: 6 for t in texts[:5]}
    same = pairs["first"].map(label_of) == pairs["second"].map(label_of)
    assert (same == (pairs["score"] == 1.0)).all()
    assert (pairs.loc[pairs["score"] == 1, "first"] != pairs.loc[pairs["score"] == 1, "second"]).all()
    assert set(pairs["score"]) == {0.0, 1.0} and (pairs["score"] == 1).sum() == 15


def test_setfit_pairs_refuse_what_has_no_pairs():
    with pytest.raises(ValueError, match="1 label.s. have a single text, so no positive pair: cancel"):
        setfit_pairs(["a", "b", "c"], ["refund", "refund", "cancel"])
    with pytest.raises(ValueError, match="at least two labels"):
        setfit_pairs(["a", "b"], ["refund", "refund"])
    with pytest.raises(ValueError, match="3 texts but 2 labels"):
        setfit_pairs(["a", "b", "c"], ["refund", "cancel"])


@pytest.mark.slow
def test_setfit_without_validation_trains_and_keeps_every_step():
    texts = [f"{b} dishwasher" for b in BRANDS] + [f"{b} fridge freezer" for b in BRANDS]
    labels = ["dishwasher"] * len(BRANDS) + ["fridge"] * len(BRANDS)
    tuned = setfit_fine_tune(texts, labels, top_layers=1, iterations=1, max_steps=3, batch_size=8,
                             learning_rate=1e-3)
    assert tuned.kept_step == 3 and tuned.curve.empty
    from metaecom.encoder import SentenceEncoder

    base = SentenceEncoder()._load()[0].auto_model.encoder.layer
    layers = tuned.model[0].auto_model.encoder.layer
    same = lambda a, b: all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))  # noqa: E731
    assert same(layers[0], base[0]) and not same(layers[-1], base[-1])
