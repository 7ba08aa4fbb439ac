"""Third-party providers through the `gpuhil.providers` entry point: one that cannot be loaded is still
listed beside gpuhil's own, with the error, and its cases skip with that reason instead of vanishing."""

from types import SimpleNamespace

from gpuhil import providers as providers_mod
from gpuhil.ops import providers_for
from gpuhil.ops.argmax.problems import ArgmaxProblem
from gpuhil.testing import case


def broken_entry_point():
    def load():
        raise ImportError("libcutlass_moe.so: cannot open shared object file")

    return SimpleNamespace(name="broken-argmax", value="broken_argmax:providers", load=load)


def test_a_provider_that_fails_to_load_is_listed_and_its_cases_skip_with_the_error(monkeypatch):
    monkeypatch.setattr(providers_mod.metadata, "entry_points", lambda group: [broken_entry_point()])
    monkeypatch.setattr(providers_mod, "LIBRARIES", ())  # the wrapped libraries' own providers aside
    listed = providers_for("argmax")
    assert [p.name for p in listed] == ["torch", "gpuhil-cute", "broken-argmax"]
    broken = listed[-1]
    assert broken.load_error == ("provider broken-argmax (entry point broken_argmax:providers) could not be loaded: "
                                 "ImportError: libcutlass_moe.so: cannot open shared object file")
    param = case(broken, ArgmaxProblem(1, 4096, "bf16"), broken, id=broken.name)
    assert [m.kwargs["reason"] for m in param.marks if m.name == "skip"] == [broken.load_error]
