"""The frame every third-party library's providers stand in: the library and its JIT toolchain are
probed facts a gate names when absent, its version is a fact known issues key on and part of the
fingerprint, and its failures are classified (a refusal of a case our gate allowed, a compile error)."""

import dataclasses

import pytest

from gpuhil import providers as providers_mod
from gpuhil.catalog.predicates import Predicate, PredicateError
from gpuhil.device.capabilities import Capabilities
from gpuhil.device.probe import DeviceFingerprint
from gpuhil.gating import Requirements, gate
from gpuhil.thirdparty import FLASHINFER, LIBRARIES, Library
from gpuhil.thirdparty.library import LibraryCompileFailed, LibraryRefused, first_compiler_error
from gpuhil.thirdparty.provider import LibraryNotUsable, LibraryProvider

H100 = dict(source="test", gpu_present=True, cc="9.0", arch_family=9, sm_count=132)


def test_a_missing_library_skips_naming_the_extra_and_a_missing_nvcc_naming_the_tool():
    req = Requirements(libraries=frozenset({"flashinfer-python"}), tools=frozenset({"nvcc"}))
    verdict = gate(req, Capabilities(**H100), attached=True)
    assert [str(r) for r in verdict.reasons] == [
        "kernel library flashinfer-python: needs installed, probed not installed (pip install 'gpuhil[flashinfer]')",
        "JIT toolchain nvcc: needs on PATH, CUDA_HOME, CUDA_PATH or /usr/local/cuda, probed not found there",
    ]
    have = Capabilities(**H100, libraries=(("flashinfer-python", "0.7.2.post1"),), tools=(("nvcc", "13.0.88"),))
    assert gate(req, have, attached=True).ok
    unknown = gate(Requirements(libraries=frozenset({"team-moe"})), Capabilities(**H100), attached=True)
    assert "(pip install team-moe)" in unknown.explain()


def test_a_library_version_is_a_predicate_fact_by_its_short_name_or_its_distribution():
    caps = Capabilities(**H100, libraries=(("flashinfer-python", "0.7.2.post1"), ("team-moe", "1.4")))
    assert Predicate.parse({"flashinfer": "<0.8"}).holds(caps.facts())
    assert not Predicate.parse({"flashinfer": ">=0.8"}).holds(caps.facts())
    assert Predicate.parse({"library:team-moe": ">=1.2", "arch_family": 9}).holds(caps.facts())
    # an absent library is an unknown fact: no condition on it holds
    assert not Predicate.parse({"quack": "<1.0"}).holds(caps.facts())
    with pytest.raises(PredicateError, match="unknown fact 'flashinfr'"):
        Predicate.parse({"flashinfr": "<0.8"})


def test_installed_libraries_join_the_fingerprint_id_and_no_library_leaves_it_as_it_was():
    bare = DeviceFingerprint(gpu_present=True, name="H100", cc="9.0", torch="2.11.0")
    with_lib = dataclasses.replace(bare, libraries={"flashinfer-python": "0.7.2.post1"})
    newer = dataclasses.replace(bare, libraries={"flashinfer-python": "0.7.3"})
    assert len({bare.fingerprint_id, with_lib.fingerprint_id, newer.fingerprint_id}) == 3
    # the id of a fingerprint without kernel libraries is the one baselines were recorded under
    assert bare.fingerprint_id == dataclasses.replace(bare, nvcc="13.0.88").fingerprint_id
    caps = Capabilities.from_fingerprint(dataclasses.replace(with_lib, nvcc="13.0.88"))
    assert caps.library("flashinfer-python") == "0.7.2.post1" and caps.tool("nvcc") == "13.0.88"


LIB = Library("fake-kernels", "fake_kernels", fact="fake", extra=None, pin="1.0", providers="x:y", jit=("nvcc",))


def test_the_library_refusing_what_our_gate_allowed_fails_naming_both():
    def refuse():
        raise ValueError("Unsupported tile for SM90: K must be a multiple of 128")

    with pytest.raises(LibraryRefused, match=r"gate disagreement: gpuhil's gate allowed fake fp8 E8, fake-kernels "
                                             r"None refused it: ValueError: Unsupported tile for SM90"):
        LIB.call("fake fp8 E8", refuse, refusal_text="unsupported")


def test_a_compile_failure_names_the_compilers_first_error_line():
    log = ("RuntimeError: Ninja build failed.\nFAILED: sampling.cuda.o\n/usr/local/cuda/bin/nvcc -c sampling.cu\n"
           "sampling.cu(42): error: identifier \"__nv_fp8x2_e4m3\" is undefined\n1 error detected\n")
    assert first_compiler_error(log) == "FAILED: sampling.cuda.o"

    def jit():
        raise RuntimeError("ptxas application ptx input, line 969; error   : Unexpected instruction types "
                           "specified for '_mma'\nptxas fatal   : Ptx assembly aborted due to errors")

    with pytest.raises(LibraryCompileFailed, match=r"failed to compile fake moe: ptxas application ptx input, "
                                                   r"line 969; error   : Unexpected instruction types"):
        LIB.call("fake moe", jit)
    with pytest.raises(KeyError):  # anything else is the library's own error, unchanged
        LIB.call("fake moe", lambda: {}["x"])


class FakeProvider(LibraryProvider):
    name, op, backend, library = "fake-argmax", "argmax", "cuda", LIB
    needs = Requirements(arch_families=frozenset({9}))

    def launcher(self, caps):
        return lambda inputs, out: "ran"


def test_dispatch_without_the_library_refuses_before_importing_it():
    caps = Capabilities(**H100, tools=(("nvcc", "13.0.88"),))
    with pytest.raises(LibraryNotUsable, match=r"fake-argmax argmax: kernel library fake-kernels: needs installed"):
        FakeProvider().prepare(None, caps)
    plan = FakeProvider().plan(None, caps)
    assert plan.requirements == (Requirements(arch_families=frozenset({9}), libraries=frozenset({"fake-kernels"}),
                                              tools=frozenset({"nvcc"})),)
    assert FakeProvider().origin == "fake-kernels not installed"


def test_every_library_in_the_registry_loads_its_adapter_or_is_listed_with_why(monkeypatch):
    broken = dataclasses.replace(FLASHINFER, providers="gpuhil.thirdparty.nonexistent:providers")
    monkeypatch.setattr(providers_mod, "LIBRARIES", (broken,))
    monkeypatch.setattr(providers_mod.metadata, "entry_points", lambda group: [])
    (listed,) = providers_mod.third_party("argmax")
    assert listed.load_error.startswith("provider flashinfer-python (gpuhil adapter gpuhil.thirdparty.nonexistent:"
                                        "providers) could not be loaded: ModuleNotFoundError")
    for lib in LIBRARIES:  # the real adapters import without their library being importable
        assert isinstance(lib.load_providers(), list)


def test_each_library_is_pinned_by_its_extra_at_the_version_its_record_states():
    import tomllib
    from pathlib import Path

    extras = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for lib in LIBRARIES:
        assert extras[lib.extra] == [f"{lib.dist}=={lib.pin}"], lib


def test_a_library_support_table_and_the_cudnn_backend_are_gated_with_the_probed_values():
    req = Requirements(ccs=frozenset({"10.0", "10.3", "12.0", "12.1"}), min_cudnn="9.21")
    verdict = gate(req, Capabilities(**H100, cudnn="9.19.0"), attached=True)
    assert [str(r) for r in verdict.reasons] == [
        "compute capability (the library's support metadata): needs one of 10.0, 10.3, 12.0, 12.1, probed 9.0",
        "cuDNN backend (torch.backends.cudnn.version()): needs >= 9.21, probed 9.19.0",
    ]
    b200 = dict(H100, cc="10.0", arch_family=10)
    assert gate(req, Capabilities(**b200, cudnn="9.21.1"), attached=True).ok


def test_the_runner_points_each_library_cache_under_one_folder_and_keeps_what_the_user_set(tmp_path):
    from gpuhil.runner import default_cache_root
    from gpuhil.thirdparty import cache_env

    assert cache_env(tmp_path, {}) == {"FLASHINFER_WORKSPACE_BASE": str(tmp_path / "flashinfer"),
                                       "QUACK_CACHE_DIR": str(tmp_path / "quack")}
    assert cache_env(tmp_path, {"QUACK_CACHE_DIR": "/mine"}) == {"FLASHINFER_WORKSPACE_BASE": str(tmp_path / "flashinfer")}
    assert default_cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "gpuhil"
