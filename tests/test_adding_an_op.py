"""docs/ADDING_AN_OP.md, followed on a copy of the library: a toy op (`scale`, y = x * s) with one
kernel folder, one ops folder, its registry line in gpuhil.ops and a suite built with the case
builder, and no edit of hardware_matrix.yaml, is listed by `gpuhil gates`, gated by its own
Requirements (the skip names its feature), collected by the runners' markers, and benched by
`gpuhil bench` against its roofline.
"""

import argparse
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FILES = {
    # The kernel folder: a pure-Python spec in the kernels.contract vocabulary, then plan and prepare.
    "src/gpuhil/kernels/scale/spec.py": '''
        from dataclasses import dataclass

        from ...gating import ConfigRow, Requirements


        @dataclass(frozen=True)
        class ScaleConfig:
            cluster_n: int = 32  # CTAs of a row sharing its scale through DSMEM: more than any part launches

            @property
            def name(self):
                return f"c{self.cluster_n}"


        def configs(caps):
            yield ConfigRow("scale", "gpuhil-cute-scale c32", requirements(ScaleConfig()), {"cluster_n": 32})


        def choose(problem, caps):
            return ScaleConfig()


        def requirements(config):
            return Requirements(min_cc="9.0", cluster_size=config.cluster_n)


        def unsupported(problem):
            return None if problem.n % 8 == 0 else f"N={problem.n} (needs a multiple of 8)"
    ''',
    "src/gpuhil/kernels/scale/__init__.py": '''
        from ...gating import Plan
        from . import spec


        def plan(problem, caps):
            refused = spec.unsupported(problem)
            if refused:
                return Plan("scale", why_not=refused)
            cfg = spec.choose(problem, caps)
            return Plan(f"scale {cfg.name}", cfg, (spec.requirements(cfg),))


        def prepare(x, caps):
            plan(x, caps).ensure(caps)
            raise NotImplementedError("the toy has no device code")
    ''',
    # The ops folder: problems (with their tier), reference, torch peer, providers, the Op record.
    "src/gpuhil/ops/scale/problems.py": '''
        from dataclasses import dataclass


        @dataclass(frozen=True)
        class ScaleProblem:
            rows: int
            n: int
            tier: str = "default"

            @property
            def name(self):
                return f"R{self.rows}-N{self.n}"


        def problems():
            return [ScaleProblem(1, 4096), ScaleProblem(64, 8192, "full")]
    ''',
    "src/gpuhil/ops/scale/reference.py": '''
        def reference(x, s):
            return x.double() * s
    ''',
    "src/gpuhil/ops/scale/roofline.py": '''
        from ...perf.work import Work


        def roofline(problem):
            return Work(bytes=2 * problem.rows * problem.n * 4)  # x read and y written, fp32
    ''',
    "src/gpuhil/ops/scale/torch_peer.py": '''
        def scale(inputs, out=None):
            x, s = inputs
            return x * s if out is None else out.copy_(x * s)
    ''',
    "src/gpuhil/ops/scale/providers.py": '''
        from ...kernels import scale as kernel
        from ...providers import Provider, TorchPeer
        from .torch_peer import scale


        class Torch(TorchPeer):
            op = "scale"

            def launcher(self, caps):
                return scale


        class GpuhilCute(Provider):
            name, op, backend = "gpuhil-cute-scale", "scale", "cute-dsl"

            def unsupported(self, problem):
                return kernel.spec.unsupported(problem)

            def plan(self, problem, caps):
                return kernel.plan(problem, caps)

            def prepare(self, inputs, caps):
                return kernel.prepare(inputs[0], caps)


        PROVIDERS = (Torch(), GpuhilCute())
    ''',
    "src/gpuhil/ops/scale/__init__.py": '''
        from ...kernels.scale import spec
        from ..op import Op
        from .problems import problems
        from .providers import PROVIDERS
        from .reference import reference
        from .roofline import roofline

        OPS = (Op("scale", "scale", problems, reference, PROVIDERS, gate_rows=spec.configs, roofline=roofline),)
    ''',
    # The suite: every provider on every problem, through the case builder.
    "suites/scale/test_scale.py": '''
        import pytest

        from gpuhil.ops import providers_for
        from gpuhil.ops.scale.problems import problems
        from gpuhil.testing import case


        @pytest.mark.gpu
        @pytest.mark.parametrize("impl, problem", [case(p, q, p, q, id=f"{p.name}-{q.name}")
                                                   for p in providers_for("scale") for q in problems()])
        def test_scale(impl, problem, capabilities):
            import torch

            x = torch.ones(problem.rows, problem.n, device="cuda")
            assert torch.equal(impl((x, 2.0), capabilities), x * 2)
    ''',
    # Its perf case: checked, then timed by the perf fixture against the op's roofline.
    "suites/scale/test_scale_perf.py": '''
        import pytest

        from gpuhil.ops import providers_for
        from gpuhil.ops.scale.problems import problems
        from gpuhil.ops.scale.roofline import roofline
        from gpuhil.testing import case


        @pytest.mark.perf
        @pytest.mark.gpu
        @pytest.mark.parametrize("provider, problem", [case(p, q, p, q, id=f"{p.name}-{q.name}")
                                                       for p in providers_for("scale") for q in problems()])
        def test_scale_perf(provider, problem, perf, capabilities):
            import torch

            x = torch.ones(problem.rows, problem.n, device="cuda")
            out = torch.empty_like(x)
            launch = provider.prepare((x, 2.0), capabilities)
            assert torch.equal(launch((x, 2.0), out), x * 2)
            perf.record([lambda: launch((x, 2.0), out)], provider=provider.name, work=roofline(problem), launch=launch)
    ''',
}

# The registry line (and its import) in gpuhil.ops.
REGISTRY = [("from . import argmax, fp8_grouped_gemm, nvfp4_moe", "from . import argmax, fp8_grouped_gemm, nvfp4_moe, scale"),
            ("    *nvfp4_moe.OPS,\n", "    *nvfp4_moe.OPS,\n    *scale.OPS,\n")]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """A copy of the repo's library, matrix and plugin wiring with the toy op added as the guide says."""
    root = tmp_path_factory.mktemp("checkout")
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "fixtures", root / "fixtures", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("hardware_matrix.yaml", "conftest.py", "pyproject.toml"):
        shutil.copy(REPO / name, root / name)
    for suite in (p for p in (REPO / "suites").iterdir() if p.is_dir() and not p.name.startswith("_")):
        (root / "suites" / suite.name).mkdir(parents=True)  # the catalog names them (their tests are not needed)
    for rel, text in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    registry = root / "src/gpuhil/ops/__init__.py"
    source = registry.read_text()
    for old, new in REGISTRY:
        assert source.count(old) == 1, f"the registry no longer reads {old!r}: update the guide and this test"
        source = source.replace(old, new)
    registry.write_text(source)
    return root


def run(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(root / "src"), "PATH": "/usr/bin:/bin", "HOME": str(root)}
    return subprocess.run([sys.executable, *args], cwd=root, capture_output=True, text=True, env=env, timeout=600)


def test_gpuhil_gates_lists_the_new_kernel_with_its_own_refusal(checkout):
    r = run(checkout, "-m", "gpuhil", "gates", "--target-sku", "h100")
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if "gpuhil-cute-scale c32" in x)
    assert "max cluster size" in line and "needs 32" in line, line


def test_its_cases_are_gated_by_their_own_requirements(checkout):
    r = run(checkout, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "--target-sku", "h100", "suites/scale")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 skipped" in r.stdout and "6 deselected" in r.stdout, r.stdout  # the full-tier problem; perf cases without --perf
    skips = [x for x in r.stdout.splitlines() if x.startswith("SKIPPED")]
    assert any("max cluster size (cuOccupancyMaxPotentialClusterSize): needs 32" in x for x in skips), skips
    assert any("GPU: needs a CUDA device" in x and "cluster" not in x for x in skips), skips  # the torch peer


@pytest.mark.parametrize("marker, problems", [("h100", ["R1-N4096"]), ("sm121", ["R1-N4096", "R64-N8192"])])
def test_the_runners_collect_it_without_a_catalog_edit(checkout, marker, problems):
    """The H100 runner's default tier takes the default-tier problem; the GB10's (sm121) full tier both."""
    r = run(checkout, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", "-m", marker, "suites/scale")
    collected = sorted(x for x in r.stdout.splitlines() if "::test_scale[" in x)
    assert collected == sorted(f"suites/scale/test_scale.py::test_scale[{p}-{q}]"
                               for p in ("torch", "gpuhil-cute-scale") for q in problems), r.stdout


# What stands in for an H100 here: its fingerprint as the probe would read it, the CPU where a case puts
# tensors on "cuda", and a timer and ceilings that report fixed numbers (as in test_perf_fixture.py).
# Appended to the checkout's conftest, which loads the plugin and the suites' fixtures.
FAKE_DEVICE = textwrap.dedent("""
    import torch
    from torch.overrides import TorchFunctionMode

    from gpuhil import session
    from gpuhil.device.probe import DeviceFingerprint
    from gpuhil.perf.recorder import PerfRecorder
    from gpuhil.perf.timer import Timing

    session.probe = lambda: DeviceFingerprint(gpu_present=True, device_index=0, name="fake H100", cc="9.0",
                                              arch_family=9, sm_count=132, l2_bytes=50 << 20, cluster_launch=True,
                                              max_cluster_size=16, torch=torch.__version__)


    class CpuForCuda(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = dict(kwargs or {})
            if str(kwargs.get("device", "")).startswith("cuda"):
                kwargs["device"] = "cpu"
            return func(*args, **kwargs)


    CpuForCuda().__enter__()


    class FakeTimer:
        def graph(self, fns, calls_per_replay=None):
            for fn in fns:
                fn()
            return Timing(median_us=10.0, p25_us=9.9, p75_us=10.1, min_us=9.8, n_samples=15, stdrel=0.001,
                          mode="graph", sm_clock_mhz=None, throttled=False, throttle_reasons=())


    FAKE = FakeTimer()
    PerfRecorder.timer = property(lambda self: FAKE)
    PerfRecorder.measure_ceilings = lambda self: {"read_gbps": 1000.0, "copy_gbps": 800.0, "launch_us": 2.0}
""")


def test_gpuhil_bench_times_it_against_its_roofline(checkout, tmp_path, monkeypatch, capsys):
    """`gpuhil bench scale` on a fake H100: the torch peer's row, written by the perf fixture, is set
    against the op's roofline (R1-N4096: 32 KiB at 1000 GB/s is 0.03 us, under the 2 us launch floor,
    so 2 / 10 us = 20 %); gpuhil-cute-scale leaves no row, skipped by its own cluster requirement."""
    from gpuhil.perf import bench

    root = tmp_path / "bench-checkout"
    shutil.copytree(checkout, root, ignore=shutil.ignore_patterns("__pycache__", "results"))
    with open(root / "conftest.py", "a") as conftest:
        conftest.write(FAKE_DEVICE)
    monkeypatch.setenv("PYTHONPATH", f"{root / 'src'}:{root}")
    monkeypatch.delenv("GPUHIL_RUN_ID", raising=False)
    res = tmp_path / "res"
    args = argparse.Namespace(suite="scale", results_dir=str(res), emulate_sku=None, matrix=None, k=None,
                              peer="torch", gate=False)
    session = type("S", (), {"fingerprint": type("F", (), {"summary": lambda self: "a fake H100"})()})()
    code = bench.run(args, root, session, [])
    out = capsys.readouterr().out
    assert code == 0, out + (res / "pytest.log").read_text()
    assert "  measured  torch scale R1-N4096: 10.00 us, 20.0 % of roofline (launch floor)" in out, out
    assert "| R1-N4096 | torch | - | 10.00 |  | 3 GB/s | 2.00 (launch floor) | 20.0 |  |  | ok |" in out, out
    assert ("SKIP    test_scale_perf[gpuhil-cute-scale-R1-N4096]: requires GPU, cc>=9.0, cluster 32: "
            "max cluster size (cuOccupancyMaxPotentialClusterSize): needs 32, probed 16") in out, out
