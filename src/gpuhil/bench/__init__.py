"""Benchmarks: commands that print our kernels side by side with the peer (torch) and the measured
hardware ceiling. Never timed unit tests."""
