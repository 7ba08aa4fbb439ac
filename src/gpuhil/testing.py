"""Helpers for suites: a provider case whose gate comes from the provider's own requirements.

`provider_param(provider, problem, *values)` is a pytest.param carrying a `requires` marker that the
plugin evaluates with the session's capabilities (what the provider's dispatch will pick for this
problem there), and a skip with the provider's own reason where it cannot be loaded or does not take
the shape. Test bodies never gate themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from .providers import Provider


def provider_param(provider: Provider, problem, *values, id: str, marks: Sequence = (), **options):
    case_marks = [pytest.mark.requires(lambda caps: provider.requirements_for(problem, caps, **options)), *marks]
    reason = provider.load_error or provider.unsupported(problem)
    if reason:
        case_marks.append(pytest.mark.skip(reason=reason))
    return pytest.param(*values, id=id, marks=case_marks)
