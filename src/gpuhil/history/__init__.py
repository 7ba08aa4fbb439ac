"""Run history of the fleet: finished runs of every SKU as partitioned parquet (docs/HISTORY.md),
their series, and the change points in them."""

from .ids import HistoryError
from .store import AddReport, add, read_perf, read_runs, read_tests

__all__ = ["AddReport", "HistoryError", "add", "read_perf", "read_runs", "read_tests"]
