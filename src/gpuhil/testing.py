"""The one case builder suites use: a provider on a problem, gated by the provider's own plan.

    case(provider, problem, *values, id="...", **options)

is a pytest.param of `values` that carries
- its identity, a `case(provider, problem)` marker: the plugin reads the provider (name, backend,
  origin) for per-SKU selections and known issues, and the problem's `tier` ("default" or "full");
- its gate, a `requires` marker the plugin evaluates with the session's capabilities: the
  requirements of the provider's plan for this problem there (what dispatch will run);
- a skip with the provider's own reason where it cannot be loaded or does not take the shape.
Test bodies never gate themselves, and a parameter's name means nothing to the plugin.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from .providers import Provider


def case(provider: Provider, problem, *values, id: str, marks: Sequence = (), **options):
    case_marks = [pytest.mark.case(provider, problem),
                  pytest.mark.requires(lambda caps: provider.requirements_for(problem, caps, **options)), *marks]
    reason = provider.load_error or provider.unsupported(problem)
    if reason:
        case_marks.append(pytest.mark.skip(reason=reason))
    return pytest.param(*values, id=id, marks=case_marks)
