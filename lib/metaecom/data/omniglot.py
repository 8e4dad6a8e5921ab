"""Omniglot: 1,623 handwritten characters from 50 alphabets, 20 drawings each (Lake,
Salakhutdinov & Tenenbaum 2015; MIT licence).

The standard few-shot protocol: the 30 *background* alphabets (964 characters) are for
meta-training, the 20 *evaluation* alphabets (659 characters) for meta-testing; images
are resized to 28x28, and each character rotated by 90, 180 and 270 degrees counts as a
new class (:func:`with_rotations`).

The official files are two zips of PNGs; the offline mirror holds a lossless NumPy
conversion of the same pixels with a table naming each character. Both are read here.

``load_omniglot(split, size)`` returns an :class:`Omniglot`:
    images float32 [n_characters, 20, size, size], 1.0 = ink, 0.0 = paper
    characters DataFrame: alphabet string, character string (e.g. "character01"), split
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from metaecom.data import catalog
from metaecom.data.parsed import cached_array, cached_frame
from metaecom.data.registry import DataUnavailableError, fetch

_VERSION = 1
SPLITS = ("background", "evaluation")
DRAWINGS = 20
_PNG = re.compile(r"^images_(background|evaluation)/([^/]+)/(character\d+)/(\d+)_(\d+)\.png$")


@dataclass(frozen=True)
class Omniglot:
    """Images of one Omniglot split and the name of each character (see module doc)."""

    images: np.ndarray
    characters: pd.DataFrame


def parse_official_zip(path) -> tuple[np.ndarray, pd.DataFrame]:
    """Read an official ``images_<split>.zip``: ink mask [n_characters, 20, 105, 105] and names.

    Characters are ordered by their file prefix (as numbered by the dataset's authors),
    drawings by drawer number.
    """
    from PIL import Image

    found: dict[tuple[str, str, str], dict[int, str]] = {}
    split = None
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            match = _PNG.match(name)
            if match:
                split, alphabet, character, prefix, drawer = match.groups()
                found.setdefault((prefix, alphabet, character), {})[int(drawer)] = name
        if not found:
            raise ValueError(f"{path}: no Omniglot PNGs (images_<split>/<alphabet>/characterNN/NNNN_DD.png) inside")
        keys = sorted(found)
        images = np.zeros((len(keys), DRAWINGS, 105, 105), dtype=bool)
        for i, key in enumerate(keys):
            drawers = found[key]
            if sorted(drawers) != list(range(1, DRAWINGS + 1)):
                raise ValueError(f"{path}: character {key[1]}/{key[2]} has drawings {sorted(drawers)}, expected 1..20")
            for j in range(DRAWINGS):
                with archive.open(drawers[j + 1]) as handle:
                    images[i, j] = ~np.asarray(Image.open(io.BytesIO(handle.read())).convert("1"), dtype=bool)
    characters = pd.DataFrame([(a, c, split) for _, a, c in keys], columns=["alphabet", "character", "split"])
    return images, characters.astype("string")


def _converted(split: str) -> tuple[np.ndarray, pd.DataFrame]:
    """The mirror's NumPy form: ``images`` True = paper, rows in file-prefix order."""
    with np.load(fetch(catalog.OMNIGLOT_NPZ[split])) as npz:
        ink = ~npz["images"]
    table = pd.read_csv(fetch(catalog.OMNIGLOT_CHARACTERS))
    table = table[table["split"] == split].sort_values("npz_index")
    if len(table) != len(ink):
        raise ValueError(f"characters.csv lists {len(table)} {split} characters, the arrays hold {len(ink)}")
    return ink, table[["alphabet", "character", "split"]].reset_index(drop=True).astype("string")


def _raw(split: str) -> tuple[np.ndarray, pd.DataFrame]:
    try:
        return _converted(split)
    except DataUnavailableError:
        return parse_official_zip(fetch(catalog.OMNIGLOT_ZIPS[split]))


def resize(ink: np.ndarray, size: int) -> np.ndarray:
    """Area-average resize of ink masks [..., 105, 105] to float32 [..., size, size]."""
    flat = torch.from_numpy(ink.reshape(-1, 1, *ink.shape[-2:]).astype(np.float32))
    small = torch.nn.functional.interpolate(flat, size=(size, size), mode="area")
    return small.reshape(*ink.shape[:-2], size, size).numpy()


def load_omniglot(split: str = "background", size: int = 28) -> Omniglot:
    """One Omniglot split as float images of ``size`` x ``size`` pixels (1.0 = ink)."""
    if split not in SPLITS:
        raise ValueError(f"unknown Omniglot split {split!r}; use one of {SPLITS}")
    if not 8 <= size <= 105:
        raise ValueError(f"size must be between 8 and 105 pixels, got {size}")
    key = [_VERSION, split, size, catalog.OMNIGLOT_NPZ[split].checksum, catalog.OMNIGLOT_ZIPS[split].checksum]
    cache: dict = {}

    def raw():
        if not cache:
            cache["ink"], cache["table"] = _raw(split)
        return cache["ink"], cache["table"]

    images = cached_array(f"omniglot-{split}-{size}", key, lambda: resize(raw()[0], size))
    characters = cached_frame(f"omniglot-{split}-characters", key[:2] + key[3:], lambda: raw()[1])
    return Omniglot(images=images, characters=characters)


def with_rotations(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation-augmented classes: class ``4*c + k`` is character c rotated by k*90 degrees.

    Input [n_characters, drawings, H, W]; returns images [4*n_characters, drawings, H, W]
    and, for each new class, the original character index.
    """
    rotated = np.stack([np.rot90(images, k, axes=(-2, -1)) for k in range(4)], axis=1)
    n, _, drawings, h, w = rotated.shape
    return rotated.reshape(n * 4, drawings, h, w), np.repeat(np.arange(n), 4)


def hold_out_characters(labels, fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """A boolean mask over ``labels`` (rotation classes, ``4*c + k`` as
    :func:`with_rotations` numbers them): True on the examples of a random ``fraction`` of
    the *characters*, every rotation of a held-out character included.

    Validation classes for early stopping and hyperparameters must be new characters, not
    new rotations of training characters: a rotated copy of a character the model trains
    on is an easier task than a character it has never seen, and would flatter every
    checkpoint.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array of rotation classes, got {labels.dtype} "
                         f"with shape {labels.shape}")
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be strictly between 0 and 1, got {fraction}")
    characters = np.unique(labels // 4)
    n_held = int(len(characters) * fraction)
    if n_held < 1 or n_held == len(characters):
        raise ValueError(f"holding out {fraction} of {len(characters)} characters leaves "
                         f"{n_held} to validate and {len(characters) - n_held} to train; both need one")
    held = np.random.default_rng(seed).choice(characters, n_held, replace=False)
    return np.isin(labels // 4, held)


def omniglot_classes(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``[n, 1, 28, 28]`` and class labels of one split, rotations as classes."""
    images, _ = with_rotations(load_omniglot(split, 28).images)
    n_classes, drawings = images.shape[:2]
    return images.reshape(-1, 1, 28, 28), np.repeat(np.arange(n_classes), drawings)
