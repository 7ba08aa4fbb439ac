"""Is this runner's GPU fit to be trusted: NVML's memory, clock and temperature state, a device copy's
bandwidth and a known-answer matmul, judged against the thresholds stated once in gpuhil.health.checks
(docs/HEALTH.md). `gpuhil run` asks before and after its tests (gpuhil.health.gate), `gpuhil health`
on demand (gpuhil.health.cli)."""
