"""run.json, the record of one `gpuhil run`: stated once here for the runner that writes it and the
history that reads it (docs/HISTORY.md, "The run record")."""

from __future__ import annotations

NAME = "run.json"
SCHEMA = 1
VERDICTS = ("PASS", "FAIL", "HARNESS ERROR", "RUNNER ERROR", "INTERRUPTED")
# field -> the types it may hold (None: may be null).
FIELDS: dict[str, tuple[type | None, ...]] = {
    "schema": (int,), "run_id": (str,), "verdict": (str,), "detail": (str, None), "exit_code": (int,),
    "sku": (str, None), "emulated_sku": (str, None), "target_sku": (str, None), "started": (str,),
    "finished": (str,), "junit": (bool,)}
