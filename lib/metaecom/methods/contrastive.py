"""Contrastive fine-tuning of the sentence encoder, with sentence-transformers' own trainer.

Instead of a head on frozen vectors, change the encoder itself so that texts meaning the
same thing (two merchants' titles for one product; two messages with one intent) land
close together. Each training pair is (anchor, positive); every *other* positive in the
batch serves as a negative, and the loss is the cross-entropy of picking the right one
among them (MultipleNegativesRankingLoss: the in-batch softmax of van den Oord et al.'s
InfoNCE, as SetFit and sentence-transformers use it). Only the top ``top_layers``
transformer layers change, which keeps a CPU run short and the rest of the encoder as
pretrained.

How long to train is chosen on validation: every ``eval_every`` steps the trainer scores
the model with sentence-transformers' ``InformationRetrievalEvaluator`` (accuracy@1 of
finding a relevant text for each validation query), the weights of the best check are
kept, and the starting weights (step 0) compete too, so "fine-tuning did not help"
is a possible, reported answer. Pairs should hold one anchor per group (one pair per
product, say): two pairs of one group in a batch would make a true match a negative.

For a few *labelled* texts (K messages of each intent) there is :func:`setfit_fine_tune`,
SetFit's recipe: pairs of texts with the same label pulled together, pairs with different
labels pushed apart (CosineSimilarityLoss), then a simple classifier on the result.
"""

from __future__ import annotations

import copy
import tempfile
import time
import warnings

import numpy as np
import pandas as pd

from metaecom.encoder import SentenceEncoder
from metaecom.training import BestCheck


class FineTunedEncoder:
    """A fine-tuned copy of a sentence encoder: ``encode(texts) -> [n, dim]`` L2-normalised
    (never cached: the cache is keyed by the pretrained model's name), with the validation
    ``curve`` (step, score), the ``kept_step`` and the ``train_seconds``."""

    def __init__(self, model, curve: pd.DataFrame, kept_step: int, train_seconds: float, batch_size: int = 128):
        self.model, self.curve, self.kept_step = model, curve, kept_step
        self.train_seconds, self.batch_size = train_seconds, batch_size

    def encode(self, texts) -> np.ndarray:
        texts = [str(t) for t in texts]
        if not texts:
            raise ValueError("encode() needs at least one text")
        return self.model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                 normalize_embeddings=True, show_progress_bar=False).astype(np.float32)


def _evaluator(queries, corpus, relevant):
    from sentence_transformers.evaluation import InformationRetrievalEvaluator

    queries = {f"q{i}": str(t) for i, t in enumerate(queries)}
    corpus = {f"c{i}": str(t) for i, t in enumerate(corpus)}
    relevant = {f"q{i}": {f"c{j}" for j in docs} for i, docs in enumerate(relevant)}
    if not queries or not corpus:
        raise ValueError("validation needs at least one query and one corpus text")
    if any(not docs for docs in relevant.values()):
        raise ValueError("every validation query needs at least one relevant corpus text")
    return InformationRetrievalEvaluator(
        queries, corpus, relevant, name="val", accuracy_at_k=[1], precision_recall_at_k=[1], mrr_at_k=[10],
        ndcg_at_k=[10], map_at_k=[10], show_progress_bar=False, batch_size=128)


def contrastive_fine_tune(anchors, positives, validation, *, encoder: SentenceEncoder | None = None,
                          top_layers: int = 2, max_steps: int = 150, eval_every: int = 50,
                          batch_size: int = 32, learning_rate: float = 5e-5, seed: int = 0) -> FineTunedEncoder:
    """Fine-tune the top ``top_layers`` layers of ``encoder`` (MiniLM by default) on
    (anchor, positive) pairs for up to ``max_steps`` steps of ``batch_size`` pairs, with
    in-batch negatives (MultipleNegativesRankingLoss).

    ``validation`` is ``(queries, corpus, relevant)``: texts, texts, and for each query the
    positions in ``corpus`` of its right answers. It is scored (accuracy@1: the nearest
    corpus text is a right answer) at step 0 and every ``eval_every`` steps; the best
    check's weights are kept (:class:`~metaecom.training.BestCheck`; ties keep the earlier step). Steps
    after the last multiple of ``eval_every`` are trained but never checked, so never kept.
    """
    anchors, positives = [str(t) for t in anchors], [str(t) for t in positives]
    if len(anchors) != len(positives):
        raise ValueError(f"{len(anchors)} anchors but {len(positives)} positives")
    if len(anchors) < batch_size:
        raise ValueError(f"{len(anchors)} pairs cannot fill one batch of {batch_size}")
    return _fine_tune({"anchor": anchors, "positive": positives}, "in-batch negatives", validation,
                      "linear", encoder=encoder, top_layers=top_layers, max_steps=max_steps, eval_every=eval_every,
                      batch_size=batch_size, learning_rate=learning_rate, seed=seed)


def setfit_pairs(texts, labels, iterations: int = 20, seed: int = 0) -> pd.DataFrame:
    """SetFit's training pairs (Tunstall et al. 2022) from a few labelled texts: in each of
    ``iterations`` rounds, every text is paired once with another text of its own label
    (``score`` 1) and once with a text of a different label (``score`` 0).

    Returns columns ``first``, ``second``, ``score``. Needs at least two labels and at
    least two texts of every label (a label with one text has no positive partner).
    """
    texts, labels = [str(t) for t in texts], np.asarray(labels)
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    names, counts = np.unique(labels, return_counts=True)
    if len(names) < 2:
        raise ValueError("SetFit pairs need at least two labels (negatives come from other labels)")
    if (counts < 2).any():
        alone = ", ".join(map(str, names[counts < 2][:10]))
        raise ValueError(f"{int((counts < 2).sum())} label(s) have a single text, so no positive pair: {alone}")
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(iterations):
        for i, label in enumerate(labels):
            same = np.flatnonzero((labels == label) & (np.arange(len(labels)) != i))
            other = np.flatnonzero(labels != label)
            rows.append((texts[i], texts[rng.choice(same)], 1.0))
            rows.append((texts[i], texts[rng.choice(other)], 0.0))
    return pd.DataFrame(rows, columns=["first", "second", "score"])


def setfit_fine_tune(texts, labels, validation=None, *, encoder: SentenceEncoder | None = None,
                     iterations: int = 20, top_layers: int = 2, max_steps: int = 40, eval_every: int = 10,
                     batch_size: int = 16, learning_rate: float = 5e-5, seed: int = 0) -> FineTunedEncoder:
    """Fine-tune the encoder on a few labelled texts in the SetFit manner: cosine similarity
    of each :func:`setfit_pairs` pair regressed on its 0/1 ``score`` (CosineSimilarityLoss),
    top ``top_layers`` layers only, up to ``max_steps`` steps of ``batch_size`` pairs. A
    classifier (logistic regression, prototypes) is then fitted on the new embeddings.

    With ``validation`` (as in :func:`contrastive_fine_tune`) the best check is kept, step 0
    included. With ``validation=None`` all ``max_steps`` steps are trained and kept: the
    count must then have been chosen elsewhere -- on validation tasks with their own
    labelled texts, since a K-shot support set leaves nothing to validate on. The learning
    rate is constant (no warm-up, no decay), so that training a chosen number of steps
    reproduces the model that was chosen, whatever ``max_steps`` the choice ran with.
    """
    pairs = setfit_pairs(texts, labels, iterations, seed)
    if len(pairs) < batch_size:
        raise ValueError(f"{len(pairs)} pairs cannot fill one batch of {batch_size}")
    return _fine_tune(pairs.to_dict("list"), "cosine similarity", validation, "constant", encoder=encoder,
                      top_layers=top_layers, max_steps=max_steps, eval_every=eval_every, batch_size=batch_size,
                      learning_rate=learning_rate, seed=seed)


def _fine_tune(columns: dict, loss: str, validation, schedule: str, *, encoder, top_layers, max_steps, eval_every,
               batch_size, learning_rate, seed) -> FineTunedEncoder:
    """The trainer plumbing both fine-tunings share: freeze all but the top layers of a copy
    of the encoder, train on ``columns`` with ``loss``, keep the best validation check (or
    the last step when ``validation`` is None). ``schedule``: "linear" (a tenth of the steps
    of warm-up, then linear decay to zero at ``max_steps``) or "constant"."""
    from tqdm import TqdmWarning

    with warnings.catch_warnings():
        # sentence-transformers imports tqdm.auto, which warns in a kernel without ipywidgets
        warnings.simplefilter("ignore", TqdmWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        from datasets import Dataset
        from sentence_transformers import (SentenceTransformerTrainer, SentenceTransformerTrainingArguments,
                                           losses)
        from sentence_transformers.training_args import BatchSamplers
        from transformers import TrainerCallback

    if max_steps < 0 or eval_every < 1:
        raise ValueError(f"max_steps must be >= 0 and eval_every >= 1, got {max_steps}, {eval_every}")
    encoder = encoder or SentenceEncoder()
    model = copy.deepcopy(encoder._load())
    layers = model[0].auto_model.encoder.layer
    if not 1 <= top_layers <= len(layers):
        raise ValueError(f"top_layers must lie in [1, {len(layers)}], got {top_layers}")
    for parameter in model.parameters():
        parameter.requires_grad = False
    for layer in layers[-top_layers:]:
        for parameter in layer.parameters():
            parameter.requires_grad = True

    evaluator = None if validation is None else _evaluator(*validation)
    metric = None if evaluator is None else f"{evaluator.name}_cosine_accuracy@1"
    best = BestCheck(layers[-top_layers:], higher_is_better=True)
    rows = []

    def check(step, score):
        rows.append({"step": int(step), "validation": float(score)})
        best.check(step, score)

    if evaluator is not None:
        check(0, evaluator(model)[metric])

    class KeepBest(TrainerCallback):
        def on_evaluate(self, args, train_state, control, metrics=None, **kwargs):
            check(train_state.global_step, metrics[f"eval_{metric}"])

    start = time.perf_counter()
    if max_steps > 0:
        with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            args = SentenceTransformerTrainingArguments(
                output_dir=folder, max_steps=max_steps, per_device_train_batch_size=batch_size,
                learning_rate=learning_rate, lr_scheduler_type=schedule,
                warmup_steps=max_steps // 10 if schedule == "linear" else 0,
                eval_strategy="no" if evaluator is None else "steps", eval_steps=eval_every,
                save_strategy="no", logging_strategy="no", report_to=[], disable_tqdm=True, seed=seed,
                data_seed=seed, dataloader_drop_last=True, use_cpu=str(encoder.device) == "cpu",
                batch_sampler=BatchSamplers.NO_DUPLICATES if loss == "in-batch negatives"
                else BatchSamplers.BATCH_SAMPLER)
            model.model_card_data.set_widget_examples = lambda dataset: None  # no model card here
            trainer = SentenceTransformerTrainer(
                model=model, args=args, train_dataset=Dataset.from_dict(columns), evaluator=evaluator,
                loss=losses.MultipleNegativesRankingLoss(model) if loss == "in-batch negatives"
                else losses.CosineSimilarityLoss(model),
                callbacks=[] if evaluator is None else [KeepBest()])
            for callback in list(trainer.callback_handler.callbacks):  # keep notebook outputs clean:
                if type(callback).__name__ in ("PrinterCallback", "ProgressCallback") or "ModelCard" in type(
                        callback).__name__:  # no printed logs, no model-card widget examples
                    trainer.remove_callback(callback)
            trainer.train()
    seconds = time.perf_counter() - start
    if evaluator is None:
        return FineTunedEncoder(model.eval(), pd.DataFrame(columns=["step", "validation"]), max_steps, seconds)
    best.restore()
    model.eval()
    curve = pd.DataFrame(rows).drop_duplicates("step", keep="last").reset_index(drop=True)
    return FineTunedEncoder(model, curve, best.best_step, seconds)
