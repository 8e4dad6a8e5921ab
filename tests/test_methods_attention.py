"""The soft read of a key-value memory: attention weights, attention_read, AttentionMemory, and
Matching Networks reading their support set as such a memory."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from metaecom.methods import MatchingNet
from metaecom.methods.attention import AttentionMemory, attention_read, attention_weights


def test_attention_read_equals_a_hand_computed_softmax():
    query = torch.tensor([[1.0, 0.0]])
    keys = torch.tensor([[2.0, 0.0], [1.0, 1.0]])      # cosines with the query: 1 and 1/sqrt(2)
    values = torch.tensor([[10.0, 0.0], [0.0, 4.0]])
    a, b = math.exp(1 / 0.5), math.exp(1 / math.sqrt(2) / 0.5)
    expected = torch.tensor([[10 * a / (a + b), 4 * b / (a + b)]])
    torch.testing.assert_close(attention_read(query, keys, values, temperature=0.5), expected)
    # dot-product similarity: softmax of (2, 1) / temperature
    a, b = math.exp(2 / 0.5), math.exp(1 / 0.5)
    torch.testing.assert_close(attention_read(query, keys, values, temperature=0.5, similarity="dot"),
                               torch.tensor([[10 * a / (a + b), 4 * b / (a + b)]]))


def test_attention_read_shapes_with_and_without_a_batch_dimension():
    q, k, v = torch.randn(3, 4, 8), torch.randn(3, 6, 8), torch.randn(3, 6, 5)
    out = attention_read(q, k, v)
    assert out.shape == (3, 4, 5)
    for i in range(3):
        torch.testing.assert_close(out[i], attention_read(q[i], k[i], v[i]))
    assert attention_weights(q[0], k[0]).shape == (4, 6)
    with pytest.raises(ValueError, match="query keys have width 7 but memory keys have width 8"):
        attention_read(torch.randn(4, 7), k[0], v[0])
    with pytest.raises(ValueError, match="memory has 6 keys but 5 values"):
        attention_read(q[0], k[0], v[0, :5])
    with pytest.raises(ValueError, match="with a leading batch dimension"):
        attention_read(q, k[0], v[0])
    with pytest.raises(ValueError, match="batch sizes differ"):
        attention_read(q, k[:2], v[:2])
    with pytest.raises(ValueError, match="similarity must be one of"):
        attention_read(q[0], k[0], v[0], similarity="euclidean")


def test_attention_memory_write_read_round_trip():
    memory = AttentionMemory(temperature=0.01)
    with pytest.raises(ValueError, match="the memory is empty"):
        memory.read(torch.randn(1, 4))
    keys = torch.eye(4)[:3] * torch.tensor([[2.0], [0.5], [3.0]])  # orthogonal keys of different lengths
    values = torch.randn(3, 6)
    memory.write(keys[:2], values[:2]).write(keys[2:], values[2:])
    assert len(memory) == 3
    # a query matching one key (cosine 1 vs 0, temperature 0.01) reads back that key's value
    torch.testing.assert_close(memory.read(torch.eye(4)[[2, 0]] * 7), values[[2, 0]])
    with pytest.raises(ValueError, match="the memory holds keys of width 4"):
        memory.write(torch.randn(1, 5), torch.randn(1, 6))
    with pytest.raises(ValueError, match="the same n"):
        memory.write(torch.randn(2, 4), torch.randn(3, 6))
    assert len(memory.clear()) == 0


def test_matching_net_reads_its_support_set_as_a_memory():
    method = MatchingNet(nn.Linear(8, 8), temperature=0.2, device="cpu")
    support_z, query_z, support_y = torch.randn(10, 8), torch.randn(4, 8), torch.arange(5).repeat(2)
    cosine = F.normalize(query_z, dim=1) @ F.normalize(support_z, dim=1).T
    expected = torch.softmax(cosine / 0.2, dim=1) @ F.one_hot(support_y, 5).float()
    assert torch.equal(method.probabilities(support_z, support_y, query_z, 5), expected)
