"""A third-party kernel library gpuhil tests: which distribution, how a user installs it, which
version gpuhil pins, and how its calls fail.

Plain data and error translation only (no gating, no torch): the probe reads the registry to record
each library's installed version, so this module must stay a leaf.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import TypeVar

T = TypeVar("T")


class LibraryRefused(RuntimeError):
    """The library refused a case gpuhil's gate let through: a gate disagreement, a finding."""


class LibraryCompileFailed(RuntimeError):
    """The library's JIT compile of a config it supports failed; the message starts with the
    compiler's first error line."""


@dataclass(frozen=True)
class Library:
    dist: str  # the distribution on the package registry: "flashinfer-python"
    module: str  # what it imports as: "flashinfer"
    fact: str  # its name in known-issue predicates: `flashinfer: "<0.8"`
    extra: str | None  # gpuhil's extra that pins it: pip install 'gpuhil[flashinfer]'
    pin: str  # the version that extra pins
    providers: str  # "module:function" returning its Provider objects (imported lazily)
    jit: tuple[str, ...] = ()  # tools its kernels compile with at run time ("nvcc")
    cache_env: str | None = None  # the variable that moves its compile cache (else it writes under $HOME or /tmp)

    @property
    def install(self) -> str:
        return f"pip install 'gpuhil[{self.extra}]'" if self.extra else f"pip install {self.dist}"

    def installed_version(self) -> str | None:
        try:
            return metadata.version(self.dist)
        except metadata.PackageNotFoundError:
            return None

    def load_providers(self) -> list:
        module, _, function = self.providers.partition(":")
        return list(getattr(importlib.import_module(module), function)())

    def call(self, what: str, fn: Callable[[], T], *, refusals: tuple[type[BaseException], ...] = (),
             refusal_text: str | None = None) -> T:
        """Run a library call that gpuhil's gate allowed (`what` names our plan). Its refusal (one of
        `refusals`, or any error whose text matches `refusal_text`) becomes LibraryRefused naming both
        sides; a JIT compile error becomes LibraryCompileFailed with the compiler's first error line."""
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - classified below, re-raised with the cause
            text = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, refusals) or (refusal_text and re.search(refusal_text, text, re.I)):
                raise LibraryRefused(f"gate disagreement: gpuhil's gate allowed {what}, {self.dist} "
                                     f"{self.installed_version()} refused it: {_first_line(text)}") from exc
            line = first_compiler_error(str(exc))
            if line is not None:
                raise LibraryCompileFailed(f"{self.dist} {self.installed_version()} failed to compile {what}: "
                                           f"{line}") from exc
            raise


# What compilers print first when they stop: nvcc/gcc ("file(12): error: ..."), ptxas ("ptxas ... error :"),
# ninja ("FAILED: ..."), the CuTe DSL's MLIR pipeline ("error: ...").
_COMPILER_ERROR = re.compile(r"^.*(?:\berror\b\s*:|\berror\b: |^FAILED: |ptxas fatal).*$", re.M | re.I)
_COMPILE_CONTEXT = re.compile(r"ninja|nvcc|ptxas|compil|jit|DSLRuntimeError|ICE", re.I)


def first_compiler_error(text: str) -> str | None:
    """The first error line of a compiler's output inside an exception's text, or None when the
    text is not a compile failure."""
    if not _COMPILE_CONTEXT.search(text):
        return None
    m = _COMPILER_ERROR.search(text)
    return m.group(0).strip() if m else None


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), text)


def resolve(libraries: tuple[Library, ...], name: str) -> Library | None:
    """The library a distribution name or predicate fact names."""
    return next((lib for lib in libraries if name in (lib.dist, lib.fact)), None)
