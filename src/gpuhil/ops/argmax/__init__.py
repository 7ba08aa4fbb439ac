"""Argmax over vocabulary logits: problems, exact reference, torch peer, providers, roofline."""

from __future__ import annotations

from ...kernels.argmax import spec
from . import providers

__all__ = ["gate_rows", "providers"]


def gate_rows(caps):
    """The argmax configs a device is handed (plain data from the kernel spec)."""
    return spec.gate_rows(caps)
