"""Argmax over vocabulary logits: problems, exact reference, torch peer, providers, roofline."""

from __future__ import annotations

from ...kernels.argmax import spec
from ..op import Op
from .problems import problems
from .providers import PROVIDERS
from .reference import reference_argmax
from .roofline import roofline

OPS = (Op("argmax", "argmax", problems, reference_argmax, PROVIDERS, gate_rows=spec.configs,
            roofline=roofline),)
