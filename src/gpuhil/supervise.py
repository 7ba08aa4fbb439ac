"""Run one child command as its own process group, so that a signal to the runner reaches the child
and everything it started, and nothing of it outlives the runner; and keep writing once our own
stdout's reader has gone.

A CI job runner cancels a job with SIGINT or SIGTERM (then SIGKILL a few seconds later); a person
presses Ctrl-C. Either way the child (pytest, and its xdist workers, which share its group) is asked
to stop with SIGINT, pytest's orderly stop: it ends the running tests and writes its junit.xml of
what finished. A group still alive `grace_s` later, or a second signal, gets SIGKILL. When the child
has ended the group is killed outright, so no worker or grandchild is left holding a GPU.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """A stop signal arrived before the child was started."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass(frozen=True)
class Ended:
    returncode: int
    signum: int | None  # the first stop signal the runner received, if any
    stderr_tail: tuple[str, ...]  # the child's last lines on stderr (also relayed as they came)


class Supervisor:
    """Install with `with Supervisor() as sup:`; a stop signal raises Interrupted in the runner until
    `defer` (the run is being recorded from then on), is then held, and once `run` has started the
    child it is forwarded to the child's process group. `run` may be called again (a run's second
    pytest session): a signal received before it returns at once, as stopped."""

    def __init__(self, grace_s: float = 10.0) -> None:
        self.grace_s = grace_s
        self.received: list[int] = []
        self._group: int | None = None
        self._deferred = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "Supervisor":
        self._previous = {s: signal.signal(s, self._on_signal) for s in SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    def _on_signal(self, signum: int, frame) -> None:
        self.received.append(signum)
        if self._group is not None:
            _signal_group(self._group, signal.SIGINT if len(self.received) == 1 else signal.SIGKILL)
        elif not self._deferred:
            raise Interrupted(signum)

    def defer(self) -> None:
        """From now on a stop signal is held for the child (or stops it before it starts), never raised."""
        self._deferred = True

    def run(self, cmd: list[str], cwd, env: dict[str, str] | None = None, log=None) -> Ended:
        """Run `cmd` to its end. `log`: a file open for binary writing that takes the child's stdout and
        stderr instead of ours (its `stderr_tail` is then empty: the log holds the output)."""
        self.defer()  # never raised in the middle of Popen
        if self.received:  # stopped before the child started: it never does
            return Ended(0, self.received[0], ())
        tail: collections.deque[str] = collections.deque(maxlen=20)
        if log is not None:
            proc = subprocess.Popen(cmd, cwd=cwd, env=env, process_group=0, stdout=log, stderr=subprocess.STDOUT)
            relays = []
        else:
            # The child's output passes through us: a reader of ours that goes away (`| head`, a dead log
            # collector) must not end the run, and its last lines on stderr say why a harness failed.
            proc = subprocess.Popen(cmd, cwd=cwd, env=env, process_group=0, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
            relays = [threading.Thread(target=_relay, args=(proc.stdout, sys.stdout, None), daemon=True),
                      threading.Thread(target=_relay, args=(proc.stderr, sys.stderr, tail), daemon=True)]
        self._group = proc.pid
        if self.received:
            _signal_group(self._group, signal.SIGINT)
        for relay in relays:
            relay.start()
        try:
            returncode = self._wait(proc)
        finally:
            _signal_group(self._group, signal.SIGKILL)  # whatever of the run is left: no orphan
            self._group = None  # a signal between two children is held for the next, which then never starts
        for relay in relays:
            relay.join(timeout=5)
        return Ended(returncode, self.received[0] if self.received else None, tuple(tail))

    def _wait(self, proc: subprocess.Popen) -> int:
        deadline = None
        while True:
            try:
                return proc.wait(timeout=0.2)  # short: a signal handler runs between polls
            except subprocess.TimeoutExpired:
                pass
            if self.received:
                deadline = deadline or time.monotonic() + self.grace_s
                if time.monotonic() > deadline:
                    _signal_group(self._group, signal.SIGKILL)


def _signal_group(group: int, signum: int) -> None:
    try:
        os.killpg(group, signum)
    except (ProcessLookupError, PermissionError):  # the group is gone already
        pass


def _relay(source, target, tail: collections.deque | None) -> None:
    """Copy the child's stream to ours as it comes (pytest's progress has no newline); keep its last
    lines in `tail`. Once our side is gone, keep draining so the child never blocks on a full pipe."""
    alive, partial = True, b""
    while chunk := os.read(source.fileno(), 65536):
        if tail is not None:
            *lines, partial = (partial + chunk).split(b"\n")
            tail.extend(line.decode(errors="replace") for line in lines)
        if alive:
            try:
                target.buffer.write(chunk)
                target.flush()
            except (OSError, ValueError):
                alive = False
                if target is sys.stdout:
                    silence_stdout()
    if tail is not None and partial:
        tail.append(partial.decode(errors="replace"))


def silence_stdout() -> None:
    """Point stdout at /dev/null once its reader has gone, so that the interpreter's last flush does
    not fail again on the broken pipe."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's capture): nothing to flush later
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
