"""Adapting a large pretrained encoder to a new task: which weights to change, and how many.

A frozen sentence encoder (:class:`metaecom.encoder.SentenceEncoder`, MiniLM by default)
turns each text into a 384-d vector once; everything that learns then sits *on top* of
those vectors, and adapting to a new task costs almost nothing. Two ways of adapting go
further than a head on frozen vectors:

- a parameter-efficient adapter, :class:`metaecom.models.LowRankAdapterMLP`: a small MLP
  on the frozen embeddings whose hidden layer carries a low-rank update ``W x + B (A x)``
  (the LoRA form of Hu et al. 2022). Meta-trained with :class:`metaecom.methods.ANIL` and
  ``head_names=model.inner_loop_names()``, the inner loop adapts the head *and* the hidden
  layer, but the hidden layer only within a rank-``rank`` subspace: between ANIL (head
  only) and MAML (every weight). It needs no code of its own beyond the network.
- :class:`EncoderFineTune`, in this module -- fine-tune the encoder itself: its top transformer layers
  and a new classification head, on one task's support set. The head starts from the
  class prototypes (a prototype classifier is a linear layer with ``w_c = 2 p_c`` and
  ``b_c = -|p_c|^2``, derived in the chapter on losses), so zero fine-tuning steps give
  exactly the frozen prototype classifier, and every step is a change from it.

Fine-tuning the top layers would mean running all of the encoder for every step. The
lower, frozen layers give the same output whatever the task, so :class:`TokenStates`
runs them once per text and keeps their token-level output; a fine-tuning step then
costs only the top layers. :class:`TopLayers` is the trainable part: those layers, mean
pooling over the tokens and L2 normalisation, exactly as the sentence encoder does
(checked by the tests against :meth:`SentenceEncoder.encode`).
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from metaecom.encoder import SentenceEncoder
from metaecom.methods.base import Adapted, Method, check_query, check_support
from metaecom.methods.metric import prototypes
from metaecom.progress import progress


def _transformer(encoder: SentenceEncoder):
    """The Hugging Face model inside the sentence-transformers pipeline, and its tokenizer."""
    pipeline = encoder._load()
    first = pipeline[0]
    pooling = getattr(pipeline[1], "pooling_mode", None) if len(pipeline) > 1 else None
    if pooling != "mean" and getattr(pipeline[1], "pooling_mode_mean_tokens", None) is not True:
        raise ValueError(f"{encoder.model_name}: only mean-pooling sentence encoders can be split into layers")
    return first.auto_model, first.tokenizer, first.max_seq_length


class TokenStates:
    """The token-level output of the encoder's lowest ``frozen_layers`` layers, one entry per text.

    Computed once (the frozen layers never change), kept unpadded, and padded per batch
    by :meth:`batch`. ``seconds`` is the time the computation took.
    """

    def __init__(self, encoder: SentenceEncoder, texts, frozen_layers: int, batch_size: int = 64,
                 desc: str | None = None):
        bert, tokenizer, max_length = _transformer(encoder)
        n_layers = len(bert.encoder.layer)
        if not 0 <= frozen_layers < n_layers:
            raise ValueError(f"frozen_layers must be between 0 and {n_layers - 1} (the encoder has {n_layers} "
                             f"layers and at least one must stay trainable), got {frozen_layers}")
        texts = [str(t) for t in texts]
        if not texts:
            raise ValueError("TokenStates needs at least one text")
        self.encoder, self.frozen_layers, self.n_layers = encoder, frozen_layers, n_layers
        self.states: list[torch.Tensor] = []
        start = time.perf_counter()
        device = next(bert.parameters()).device
        batches = range(0, len(texts), batch_size)
        for first in progress(batches, desc=desc, disable=desc is None):
            tokens = tokenizer(texts[first:first + batch_size], padding=True, truncation=True, max_length=max_length,
                               return_tensors="pt").to(device)
            with torch.no_grad():
                hidden = bert(**tokens, output_hidden_states=True).hidden_states[frozen_layers]
            lengths = tokens["attention_mask"].sum(dim=1).tolist()
            self.states.extend(hidden[i, :length].cpu().clone() for i, length in enumerate(lengths))
        self.seconds = time.perf_counter() - start

    def __len__(self) -> int:
        return len(self.states)

    def batch(self, rows) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states ``[n, tokens, dim]`` of the texts ``rows``, zero-padded, and the mask ``[n, tokens]``."""
        rows = np.asarray(rows).reshape(-1)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self.states)):
            raise ValueError(f"rows must be text numbers 0..{len(self.states) - 1}, got {rows.min()}..{rows.max()}")
        picked = [self.states[int(r)] for r in rows]
        width = max(s.shape[0] for s in picked)
        states = torch.zeros(len(picked), width, picked[0].shape[1])
        mask = torch.zeros(len(picked), width)
        for i, s in enumerate(picked):
            states[i, : s.shape[0]], mask[i, : s.shape[0]] = s, 1.0
        return states, mask


class TopLayers(nn.Module):
    """The encoder's layers above ``frozen_layers`` (a trainable copy), then mean pooling and
    L2 normalisation: token states from :class:`TokenStates` -> sentence embeddings."""

    def __init__(self, encoder: SentenceEncoder, frozen_layers: int):
        super().__init__()
        bert, _, _ = _transformer(encoder)
        self.layers = copy.deepcopy(bert.encoder.layer[frozen_layers:]).cpu()

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        additive = (1.0 - mask[:, None, None, :]) * torch.finfo(states.dtype).min  # masked tokens get no attention
        hidden = states
        for layer in self.layers:
            out = layer(hidden, attention_mask=additive)
            hidden = out[0] if isinstance(out, tuple) else out
        pooled = (hidden * mask.unsqueeze(-1)).sum(dim=1) / mask.sum(dim=1, keepdim=True)
        return F.normalize(pooled, dim=1)


def prototype_head(embeddings: torch.Tensor, labels: torch.Tensor, n_classes: int, scale: float) -> nn.Linear:
    """A linear layer that *is* the prototype classifier: logits ``scale * (2 p_c . z - |p_c|^2)``,
    i.e. ``-scale * |z - p_c|^2`` up to a term that is the same for every class."""
    centres = prototypes(embeddings, labels, n_classes)
    head = nn.Linear(embeddings.shape[1], n_classes)
    with torch.no_grad():
        head.weight.copy_(2 * scale * centres)
        head.bias.copy_(-scale * centres.pow(2).sum(dim=1))
    return head


class EncoderFineTune(Method):
    """Fine-tune the top ``train_layers`` transformer layers and a prototype-initialised head
    on each task's support set (Adam, ``steps`` steps; dropout on while training). Each step
    uses the whole support set, or a random minibatch of ``batch_size`` messages when the
    support set is larger (a step then costs the same for 50 or 500 support messages).

    Inputs are *text numbers*: rows of the :class:`TokenStates` given at construction, as
    an array ``[n, 1]`` -- the token states of those texts are already computed, so a
    number is all the method needs. ``steps=0`` gives the frozen prototype classifier.
    """

    def __init__(self, token_states: TokenStates, steps: int = 20, lr: float = 1e-4, head_lr: float = 1e-2,
                 scale: float = 10.0, seed: int = 0, batch_size: int | None = None):
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None (the whole support set), got {batch_size}")
        self.token_states, self.steps, self.lr, self.head_lr, self.scale, self.seed = (
            token_states, steps, lr, head_lr, scale, seed)
        self.batch_size = batch_size
        self.top = TopLayers(token_states.encoder, token_states.frozen_layers).eval()
        self.train_layers = token_states.n_layers - token_states.frozen_layers
        self.name = f"fine-tune top {self.train_layers} encoder layer{'s' * (self.train_layers > 1)}"

    def _rows(self, x: np.ndarray) -> np.ndarray:
        if x.shape[1:] != (1,) or not np.all(x == np.round(x)):
            raise ValueError(f"{self.name}: inputs are text numbers of shape [n, 1], got shape {x.shape}")
        return x[:, 0].astype(np.int64)

    def adapt(self, support_x, support_y) -> Adapted:
        x, y, n = check_support(support_x, support_y)
        states, mask = self.token_states.batch(self._rows(x))
        labels = torch.as_tensor(y)
        torch.manual_seed(self.seed)
        top = copy.deepcopy(self.top)
        with torch.no_grad():
            head = prototype_head(top.eval()(states, mask), labels, n, self.scale)
        optimizer = torch.optim.Adam([{"params": top.parameters(), "lr": self.lr},
                                      {"params": head.parameters(), "lr": self.head_lr}])
        top.train()
        generator = torch.Generator().manual_seed(self.seed)
        for step in range(self.steps):
            rows = slice(None)
            if self.batch_size is not None and self.batch_size < len(labels):
                rows = torch.randperm(len(labels), generator=generator)[: self.batch_size]
            loss = F.cross_entropy(head(top(states[rows], mask[rows])), labels[rows])
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{self.name}: support loss became {loss.item()} at step {step + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return _FineTunedAdapted(self, top.eval(), head, n)


class _FineTunedAdapted(Adapted):
    def __init__(self, method: EncoderFineTune, top: TopLayers, head: nn.Linear, n_classes: int):
        self.method, self.top, self.head, self.n_classes, self.feature_shape = method, top, head, n_classes, (1,)

    def predict_proba(self, query_x) -> np.ndarray:
        x = check_query(query_x, self.feature_shape)
        states, mask = self.method.token_states.batch(self.method._rows(x))
        with torch.no_grad():
            return torch.softmax(self.head(self.top(states, mask)), dim=1).numpy()

    def _proba(self, x):  # predict_proba is overridden: inputs are text numbers
        return self.predict_proba(x)
