"""run.json, the record of one `gpuhil run`, and the junit properties of its reruns: stated once here
for the runner that writes them and the history that reads them (docs/HISTORY.md, "The run record")."""

from __future__ import annotations

NAME = "run.json"
SCHEMA = 1
VERDICTS = ("PASS", "FAIL", "HARNESS ERROR", "RUNNER ERROR", "RUNNER UNHEALTHY", "INTERRUPTED")
# field -> the types it may hold (None: may be null).
FIELDS: dict[str, tuple[type | None, ...]] = {
    "schema": (int,), "run_id": (str,), "verdict": (str,), "detail": (str, None), "exit_code": (int,),
    "sku": (str, None), "emulated_sku": (str, None), "target_sku": (str, None), "started": (str,),
    "finished": (str,), "junit": (bool,)}
# Added after schema 1's first records: checked where present, a record without them is still read.
# health: {"before": state, "after": state}, each healthy, unhealthy, not checked or null (not asked);
# suspect: the runner was unhealthy after the tests (gpuhil.health.record).
# reruns: the reruns of failed tests (gpuhil.reruns), null when none could run.
OPTIONAL_FIELDS: dict[str, tuple[type | None, ...]] = {"health": (dict,), "suspect": (bool,), "reruns": (dict, None)}

# junit properties of a failed test that was run again (gpuhil.reruns).
NODEID_PROPERTY = "gpuhil_nodeid"  # its pytest node id
ATTEMPTS_PROPERTY = "gpuhil_attempts"  # "failed (session), passed (alone)"
FLAKY_PROPERTY = "gpuhil_flaky"  # "true": it passed when run again
ORDER_PROPERTY = "gpuhil_order_dependent"  # the node id it fails after
