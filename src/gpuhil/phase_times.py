"""Where each test's time goes, as junit.xml properties the run report adds up.

pytest times each phase of a test (its report's `duration`); compiles are counted apart
(gpuhil.compile_clock, opened around the whole test) and taken out of the phase they happened in:

- compile_s: inside gpuhil's kernel compile entry points, in any phase;
- setup_s: the rest of setup: fixtures (inputs, references; the first test in a worker also pays
  for the session-scoped ones);
- run_s: the rest of the test body: launches, synchronisation, checks, and kernel libraries' own
  just-in-time compiles, which gpuhil's clock does not see;
- teardown_s: the rest of teardown: fixture finalisers.

They sum to the test's junit `time`. The properties go on the teardown report, the one junit.xml
takes a test's properties from; xdist carries them from the worker to the controller. A test whose
worker died has no teardown report, so only its total.
"""

from __future__ import annotations

import pytest

from . import compile_clock

PROPERTIES = ("compile_s", "setup_s", "run_s", "teardown_s")
_PHASE_PROPERTY = {"setup": "setup_s", "call": "run_s", "teardown": "teardown_s"}
_CLOCK = pytest.StashKey[compile_clock.CompileClock]()
_TIMES = pytest.StashKey[dict]()


class PhaseTimes:
    """Registered by the gpuhil plugin in every process that runs tests."""

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem):
        item.stash[_TIMES] = dict.fromkeys(PROPERTIES, 0.0)
        with compile_clock.counting() as clock:
            item.stash[_CLOCK] = clock
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call):
        report = yield
        clock, times = item.stash.get(_CLOCK, None), item.stash.get(_TIMES, None)
        if clock is None or times is None or call.when not in _PHASE_PROPERTY:
            return report
        compiled = clock.take()
        times["compile_s"] += compiled
        times[_PHASE_PROPERTY[call.when]] += max(0.0, report.duration - compiled)
        if call.when == "teardown":
            report.user_properties += [(name, f"{times[name]:.3f}") for name in PROPERTIES]
        return report
