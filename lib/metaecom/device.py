"""The one place that decides where tensors live.

Every chapter and every method asks :func:`get_device` instead of testing
``torch.cuda.is_available()`` itself, so a reader can move the whole book to another
device by setting one environment variable, ``METAECOM_DEVICE`` (``cpu`` or ``cuda``).
"""

from __future__ import annotations

import os

import torch

DEVICE_ENV = "METAECOM_DEVICE"


def get_device(prefer: str | None = None) -> torch.device:
    """Return the device to compute on: CUDA when present, else the CPU.

    ``prefer`` (or, when it is None, the ``METAECOM_DEVICE`` environment variable) forces
    a choice. Asking for CUDA on a machine without it is an error rather than a silent
    fall-back, because a reader who asked for the GPU wants to know they did not get it.
    """
    choice = prefer if prefer is not None else os.environ.get(DEVICE_ENV, "").strip()
    choice = choice.lower()
    if choice in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {choice!r} was asked for (via {'the prefer argument' if prefer else DEVICE_ENV}), "
                "but torch sees no CUDA GPU on this machine; use 'cpu' or leave it unset."
            )
        return torch.device(choice)
    raise ValueError(f"unknown device {choice!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'")


def describe_device(device: torch.device | None = None) -> str:
    """A one-line human description of a device, e.g. ``cuda:0 (NVIDIA H100 80GB HBM3)``."""
    device = device if device is not None else get_device()
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
