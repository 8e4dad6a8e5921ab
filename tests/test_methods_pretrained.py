"""Adapting the pretrained encoder: the split into frozen and trainable layers reproduces the
encoder exactly, fine-tuning starts from the prototype classifier, and the low-rank adapter
(:class:`metaecom.models.LowRankAdapterMLP`) changes only what it should."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from metaecom.encoder import SentenceEncoder
from metaecom.methods import ANIL
from metaecom.methods.pretrained import EncoderFineTune, TokenStates, TopLayers, prototype_head
from metaecom.models import LowRankAdapterMLP

TEXTS = ["Where is my parcel?", "My package has not arrived yet.", "The delivery is three days late.",
         "Tracking says delivered but nothing came.",
         "How do I change my PIN code?", "I forgot my card PIN.", "Can I reset the PIN in the app?",
         "My PIN is blocked after three tries.",
         "I want a refund for a broken item.", "Please give me my money back.", "How long does a refund take?",
         "The refund has not reached my account."]
LABELS = np.repeat(np.arange(3), 4)


@pytest.fixture(scope="module")
def encoder():
    return SentenceEncoder(device="cpu")


@pytest.fixture(scope="module")
def states(encoder):
    return TokenStates(encoder, TEXTS, frozen_layers=4, batch_size=5)  # batches of unequal padding


@pytest.mark.parametrize("frozen", [0, 5])
def test_top_layers_reproduce_the_encoder(encoder, frozen):
    token_states = TokenStates(encoder, TEXTS, frozen_layers=frozen, batch_size=5)
    with torch.no_grad():
        embedded = TopLayers(encoder, frozen)(*token_states.batch(np.arange(len(TEXTS))))
    np.testing.assert_allclose(embedded.numpy(), encoder.encode_uncached(TEXTS), atol=1e-5)


def test_prototype_head_is_the_nearest_prototype_rule():
    z = F.normalize(torch.randn(9, 6), dim=1)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2, 2, 2])
    head = prototype_head(z, labels, 3, scale=10.0)
    centres = torch.stack([z[labels == c].mean(dim=0) for c in range(3)])
    query = torch.randn(5, 6)
    logits = head(query)
    expected = -10.0 * torch.cdist(query, centres).pow(2)
    # equal up to a per-query constant (10 |query|^2)
    torch.testing.assert_close(logits - logits[:, :1], expected - expected[:, :1], atol=1e-4, rtol=1e-4)


def test_zero_steps_is_the_frozen_prototype_classifier(encoder, states):
    support = np.array([0, 1, 4, 5, 8, 9])
    query = np.array([2, 3, 6, 7, 10, 11])
    adapted = EncoderFineTune(states, steps=0).adapt(support[:, None], LABELS[support])
    vectors = encoder.encode_uncached(TEXTS)
    centres = np.stack([vectors[support][LABELS[support] == c].mean(axis=0) for c in range(3)])
    nearest = ((vectors[query][:, None, :] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
    np.testing.assert_array_equal(adapted.predict(query[:, None]), nearest)
    assert np.mean(nearest == LABELS[query]) >= 5 / 6  # the encoder already knows these intents


def test_fine_tuning_fits_the_support_set_and_leaves_the_method_unchanged(states):
    method = EncoderFineTune(states, steps=15, lr=1e-3, seed=0)
    before = {n: p.clone() for n, p in method.top.named_parameters()}
    support = np.arange(len(TEXTS))
    shuffled = np.random.default_rng(0).permutation(3)[LABELS]  # labels the encoder cannot guess
    frozen = EncoderFineTune(states, steps=0).adapt(support[:, None], shuffled)
    tuned = method.adapt(support[:, None], shuffled)

    def loss(adapted):
        return -np.log(adapted.predict_proba(support[:, None])[np.arange(len(support)), shuffled]).mean()

    assert loss(tuned) < 0.5 * loss(frozen)
    minibatched = EncoderFineTune(states, steps=15, lr=1e-3, seed=0, batch_size=6).adapt(support[:, None], shuffled)
    assert loss(minibatched) < 0.5 * loss(frozen)
    assert all(torch.equal(p, before[n]) for n, p in method.top.named_parameters())
    assert method.name == "fine-tune top 2 encoder layers"


def test_bad_inputs_are_refused(encoder, states):
    with pytest.raises(ValueError, match="frozen_layers must be between 0 and 5"):
        TokenStates(encoder, TEXTS, frozen_layers=6)
    with pytest.raises(ValueError, match="at least one text"):
        TokenStates(encoder, [], frozen_layers=2)
    method = EncoderFineTune(states, steps=1)
    with pytest.raises(ValueError, match="text numbers of shape"):
        method.adapt(np.zeros((3, 2)), np.arange(3))
    with pytest.raises(ValueError, match="text numbers 0..11"):
        method.adapt(np.array([[0], [40]]), np.array([0, 1]))
    with pytest.raises(ValueError, match="steps must be >= 0"):
        EncoderFineTune(states, steps=-1)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        EncoderFineTune(states, batch_size=0)


def test_low_rank_adapter_starts_as_no_change_and_is_all_the_inner_loop_moves():
    model = LowRankAdapterMLP(8, 6, 3, rank=2, seed=0)
    x = torch.randn(10, 8)
    torch.testing.assert_close(model(x), model.head(torch.relu(model.hidden(x))))
    assert model.adapter_size() == 2 * 8 + 6 * 2 + 6 * 3 + 3
    method = ANIL(model, n_way=3, k_shot=2, n_query=2, inner_steps=3, inner_lr=0.5,
                  head_names=model.inner_loop_names(), device="cpu")
    adapted = method.adapted_parameters(x[:6], torch.tensor([0, 0, 1, 1, 2, 2]))
    params = dict(model.named_parameters())
    for name in ("hidden.weight", "hidden.bias"):
        assert torch.equal(adapted[name], params[name])
    for name in model.inner_loop_names():
        assert not torch.equal(adapted[name], params[name]), name
    with pytest.raises(ValueError, match="rank must be between 1 and"):
        LowRankAdapterMLP(8, 6, 3, rank=7)
    with pytest.raises(ValueError, match="identity_init needs hidden == n_features"):
        LowRankAdapterMLP(8, 6, 3, identity_init=True)


def test_identity_start_passes_the_features_through_and_a_zero_head_favours_no_class():
    model = LowRankAdapterMLP(5, 5, 4, rank=2, identity_init=True, zero_head=True)
    x = torch.randn(7, 5)
    torch.testing.assert_close(F.relu(model.hidden(x)), F.relu(x))
    torch.testing.assert_close(model(x), torch.zeros(7, 4))
    a, b = LowRankAdapterMLP(5, 5, 4, seed=3), LowRankAdapterMLP(5, 5, 4, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))  # the seed fixes every weight
    state = torch.get_rng_state()
    LowRankAdapterMLP(5, 5, 4, seed=4)
    assert torch.equal(torch.get_rng_state(), state)  # and the global random state is left alone
