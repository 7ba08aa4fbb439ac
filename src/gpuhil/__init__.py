"""gpuhil: hardware-in-the-loop regression suite for LLM-serving GPU kernels."""

__version__ = "0.1.0"
