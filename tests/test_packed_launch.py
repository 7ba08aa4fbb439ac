"""The packed launch path (kernels.compiled.PackedCall) and the cached operand check, on the CPU:
kernels compiled ahead of time for sm_90a, so the DSL's own argument conversion can be compared
with the slots without a GPU."""

import ctypes

import pytest

pytest.importorskip("cutlass")

import torch  # noqa: E402

from gpuhil.kernels.argmax import cute as argmax_cute  # noqa: E402
from gpuhil.kernels.argmax.spec import ArgmaxConfig  # noqa: E402
from gpuhil.kernels.compiled import PackedCall, arg_kinds  # noqa: E402
from gpuhil.kernels.fp8_grouped_gemm import cute_warp, cute_wgmma, operands  # noqa: E402
from gpuhil.kernels.fp8_grouped_gemm.spec_warp import WarpGemmConfig  # noqa: E402
from gpuhil.kernels.fp8_grouped_gemm.spec_wgmma import WgmmaConfig  # noqa: E402
from gpuhil.kernels.tiles import Tile  # noqa: E402

# Addresses above 4 GiB and sizes near the int32 limit: a slot of the wrong width or order shows.
BIG = 0x7F12_3456_7890
GEMM_RAW = (BIG, BIG + 0x100, BIG + 0x200, BIG + 0x300, BIG + 0x400, BIG + 0x500, 2**31 - 1, 1536, 2048, 128)


def kernels():
    return {
        "argmax": (argmax_cute.compile_argmax(ArgmaxConfig(256, 8, 8), "bf16", target="sm_90a"),
                   ("ptr", "ptr", "ptr", "i32", "i32", "i64", "stream"), (BIG, BIG + 64, BIG + 128, 64, 151936, 2**40, 0x51)),
        "warp": (cute_warp.compile_gemm(WarpGemmConfig(Tile(128, 64, 64), 3), "rowwise", target="sm_90a"),
                 ("ptr",) * 6 + ("i32",) * 4 + ("stream",), (*GEMM_RAW, 0x52)),
        "wgmma": (cute_wgmma.compile_gemm(WgmmaConfig(Tile(128, 128, 128), 1, 4), "rowwise", target="sm_90a"),
                  ("ptr",) * 6 + ("i32",) * 5 + ("stream",), (*GEMM_RAW, 132, 0x53)),
    }


@pytest.fixture(scope="module")
def compiled():
    return kernels()


@pytest.mark.aot
@pytest.mark.parametrize("name", ["argmax", "warp", "wgmma"])
def test_slots_hold_what_the_dsl_passes(compiled, name):
    kernel, kinds, raw = compiled[name]
    assert kernel.packed is not None and kernel.packed.kinds == kinds  # read from the host function's annotations
    assert kernel.packed.agrees(raw)


@pytest.mark.aot
def test_a_wrong_convention_keeps_the_generic_path(compiled):
    kernel, kinds, raw = compiled["argmax"]
    swapped = PackedCall(kernel, kinds, lambda cfg, dtype, x, val, idx, *rest: argmax_cute.host_args(cfg, dtype, val, x, idx, *rest))
    assert not swapped.agrees(raw)
    narrow = PackedCall(kernel, ("ptr", "ptr", "ptr", "i32", "i32", "i32", "stream"), argmax_cute.host_args)
    assert not narrow.agrees(raw)  # the row stride is 64-bit: a 32-bit slot would drop its high half


def test_annotations_outside_the_slot_kinds_give_no_packed_call():
    def host(x: "cute.Pointer", t: "cute.Tensor"):
        pass

    def plain(x: "cute.Pointer", n: "Int32", ld: "Int64", s: "cuda.CUstream"):
        pass

    assert arg_kinds(host) is None
    assert arg_kinds(plain) == ("ptr", "i32", "i64", "stream")


class FakeHostFunction:
    """Records how it was called, and converts arguments the way the DSL does (one address each)."""

    def __init__(self):
        self.generic, self.packed, self.storage = [], [], []

    def __call__(self, *args):
        self.generic.append(args)

    def generate_execution_args(self, *args):
        self.storage = [ctypes.c_int64(a) for a in args]
        return [ctypes.addressof(s) for s in self.storage], args

    def run_compiled_program(self, addrs):
        self.packed.append(tuple(ctypes.c_int64.from_address(a).value for a in addrs))


def test_first_call_is_generic_then_slots_are_reused():
    from gpuhil.kernels.compiled import CompiledKernel

    fn = FakeHostFunction()
    kernel = CompiledKernel("cfg", "v", None, fn)
    call = PackedCall(kernel, ("i64", "i64"), lambda cfg, variant, a, b: (a, b))
    call(1, 2)
    assert fn.generic == [(1, 2)] and not fn.packed and call.fast
    call(3, 4)
    call(5, 6)
    assert fn.generic == [(1, 2)] and fn.packed == [(3, 4), (5, 6)]


def layout(t=512, k=2048, g=128, n=1536, **override):
    cuda0 = torch.device("cuda", 0)
    f8 = torch.float8_e4m3fn
    parts = {"a": (torch.Size([t, k]), f8, True, cuda0), "b": (torch.Size([g, n, k]), f8, True, cuda0),
             "offs": (torch.Size([g]), torch.int32, True, cuda0), "scale_a": (torch.Size([t]), torch.float32, True, cuda0),
             "scale_b": (torch.Size([g, n]), torch.float32, True, cuda0), "out": (torch.Size([t, n]), torch.bfloat16, True, cuda0)}
    for name, value in override.items():
        parts[name] = value
    return tuple(parts[name] for name in operands.NAMES)


def test_operand_layout_is_checked_once_per_layout():
    operands.check_layout.cache_clear()
    assert operands.check_layout("rowwise", layout()) == (512, 1536, 2048, 128)
    assert operands.check_layout("rowwise", layout()) == (512, 1536, 2048, 128)
    assert operands.check_layout.cache_info().hits == 1


@pytest.mark.parametrize("override, message", [
    ({"a": (torch.Size([512, 2048]), torch.bfloat16, True, torch.device("cuda", 0))}, "a must be float8_e4m3fn"),
    ({"b": (torch.Size([128, 1536, 1024]), torch.float8_e4m3fn, True, torch.device("cuda", 0))}, r"b's K \(1024\) must equal"),
    ({"out": (torch.Size([512, 1536]), torch.bfloat16, False, torch.device("cuda", 0))}, "out must be contiguous"),
    ({"offs": (torch.Size([127]), torch.int32, True, torch.device("cuda", 0))}, r"offs must have shape \[128\]"),
    ({"scale_b": (torch.Size([128]), torch.float32, True, torch.device("cuda", 0))}, r"scale_b must be \[G=128, N=1536\]"),
    ({"scale_a": (torch.Size([512]), torch.float32, True, torch.device("cpu"))}, "scale_a must be a CUDA tensor on cuda:0"),
])
def test_operand_layout_errors_name_the_operand(override, message):
    with pytest.raises(ValueError, match=message):
        operands.check_layout("rowwise", layout(**override))
