"""The packed launch path (kernels.compiled.PackedCall) and the cached operand check, on the CPU:
kernels compiled ahead of time for sm_90a, so the DSL's own argument conversion can be compared
with the slots without a GPU."""

import ctypes
import struct

import pytest

pytest.importorskip("cutlass")

import torch  # noqa: E402

from gpuhil.kernels.argmax import cute as argmax_cute  # noqa: E402
from gpuhil.kernels.argmax.spec import ArgmaxConfig  # noqa: E402
from gpuhil.kernels.compiled import CompiledKernel, PackedCall, arg_kinds  # noqa: E402
from gpuhil.kernels.fp8_grouped_gemm import cute_warp, cute_wgmma, operands  # noqa: E402
from gpuhil.kernels.fp8_grouped_gemm.spec_warp import WarpGemmConfig  # noqa: E402
from gpuhil.kernels.fp8_grouped_gemm.spec_wgmma import WgmmaConfig  # noqa: E402
from gpuhil.kernels.nvfp4_grouped_gemm import cute_gemm as nvfp4_gemm, spec as nvfp4_spec  # noqa: E402
from gpuhil.kernels.tiles import Tile  # noqa: E402

# Addresses above 4 GiB and sizes near the int32 limit: a slot of the wrong width or order shows.
BIG = 0x7F12_3456_7890
GEMM_RAW = (BIG, BIG + 0x100, BIG + 0x200, BIG + 0x300, BIG + 0x400, BIG + 0x500, 2**31 - 1, 1536, 2048, 128)


def kernels():
    return {
        "argmax": (argmax_cute.compile_argmax(ArgmaxConfig(256, 8, 8, pdl=True), "bf16", target="sm_90a"),
                   ("ptr", "ptr", "ptr", "ptr", "i32", "i32", "i64", "stream"),
                   (BIG, BIG + 64, BIG + 128, BIG + 192, 64, 151936, 2**40, 0x51)),
        "warp": (cute_warp.compile_gemm(WarpGemmConfig(Tile(128, 64, 64), 3), "rowwise", target="sm_90a"),
                 ("ptr",) * 6 + ("i32",) * 4 + ("stream",), (*GEMM_RAW, 0x52)),
        "wgmma": (cute_wgmma.compile_gemm(WgmmaConfig(Tile(128, 128, 128), 1, 4), "rowwise", target="sm_90a"),
                  ("ptr",) * 6 + ("i32",) * 5 + ("stream",), (*GEMM_RAW, 132, 0x53)),
        # either mainloop: one host function (the native one needs an SM12x target and a CUDA 13 payload)
        "nvfp4": (nvfp4_gemm.compile_gemm(nvfp4_spec.GemmConfig(nvfp4_spec.DEQUANT, Tile(64, 64, 128), 3),
                                          target="sm_90a"),
                  ("ptr",) * 7 + ("i32",) * 4 + ("stream",), (*GEMM_RAW[:6], BIG + 0x600, *GEMM_RAW[6:], 0x54)),
    }


@pytest.fixture(scope="module")
def compiled():
    return kernels()


@pytest.mark.aot
@pytest.mark.parametrize("name", ["argmax", "warp", "wgmma", "nvfp4"])
def test_slots_hold_what_the_dsl_passes(compiled, name):
    kernel, kinds, raw = compiled[name]
    assert kernel.packed is not None and kernel.packed.kinds == kinds  # read from the host function's annotations
    assert kernel.packed.agrees(raw)


@pytest.mark.aot
def test_a_wrong_convention_keeps_the_generic_path(compiled):
    kernel, kinds, raw = compiled["argmax"]
    swapped = PackedCall(kernel, kinds, lambda cfg, dtype, x, val, idx, *rest: argmax_cute.host_args(cfg, dtype, val, x, idx, *rest))
    assert not swapped.agrees(raw)
    narrow = PackedCall(kernel, ("ptr", "ptr", "ptr", "ptr", "i32", "i32", "i32", "stream"), argmax_cute.host_args)
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
    fn = FakeHostFunction()
    kernel = CompiledKernel("cfg", "v", None, fn)
    call = PackedCall(kernel, ("i64", "i64"), lambda cfg, variant, a, b: (a, b))
    call(1, 2)
    assert fn.generic == [(1, 2)] and not fn.packed and call.fast
    call(3, 4)
    call(5, 6)
    assert fn.generic == [(1, 2)] and fn.packed == [(3, 4), (5, 6)]


def test_a_value_too_wide_for_its_slot_raises_on_the_fast_path():
    fn = FakeHostFunction()
    call = PackedCall(CompiledKernel("cfg", "v", None, fn), ("ptr", "i32"), lambda cfg, variant, p, n: (p, n))
    call(BIG, 7)
    call(BIG, 2**31 - 1)
    assert fn.packed[-1] == (BIG, 2**31 - 1)
    with pytest.raises(struct.error):  # 2**31 would wrap to a negative size in an int32 slot
        call(BIG, 2**31)


class FakeExecutor:
    """The executor internals the direct path reads: an entry point taking an address array, its
    packer (own buffer, refilled per call) and a CUDA result slot."""

    def __init__(self):
        self.calls, self.packs = [], 0
        self._has_cuda_result, self.cuda_result = True, ctypes.c_int32(0)
        self._buffer = (ctypes.c_void_p * 3)()

    def _get_invoke_packed_args_func(self, addrs):
        self.packs += 1
        for i, a in enumerate(addrs):
            self._buffer[i] = a
        self._buffer[2] = ctypes.addressof(self.cuda_result)
        return self._buffer

    def capi_func(self, packed):
        self.calls.append(tuple(ctypes.c_int64.from_address(packed[i]).value for i in range(2)))


def test_fast_calls_reuse_one_address_array_and_report_a_failed_launch():
    fn = FakeHostFunction()
    fn._default_executor = ex = FakeExecutor()
    call = PackedCall(CompiledKernel("cfg", "v", None, fn), ("i64", "i64"), lambda cfg, variant, a, b: (a, b))
    for a in range(4):
        call(a, 10 + a)
    assert fn.generic == [(0, 10)] and not fn.packed
    assert ex.calls == [(1, 11), (2, 12), (3, 13)] and ex.packs == 1  # packed once per thread
    ex.cuda_result.value = 719  # what the compiled program leaves after a failed launch
    with pytest.raises(RuntimeError, match="CUDA error 719"):
        call(5, 6)


def layout(t=512, k=2048, g=128, n=1536, **override):
    cuda0 = 0  # device index, as Tensor.get_device gives it
    f8 = torch.float8_e4m3fn
    parts = {"a": (torch.Size([t, k]), f8, True, cuda0), "b": (torch.Size([g, n, k]), f8, True, cuda0),
             "offs": (torch.Size([g]), torch.int32, True, cuda0), "scale_a": (torch.Size([t]), torch.float32, True, cuda0),
             "scale_b": (torch.Size([g, n]), torch.float32, True, cuda0), "out": (torch.Size([t, n]), torch.bfloat16, True, cuda0)}
    parts.update(override)
    return tuple(x for name in operands.NAMES for x in parts[name])  # flat, as check passes it


def test_operand_layout_is_checked_once_per_layout():
    operands.check_layout.cache_clear()
    assert operands.check_layout("rowwise", *layout()) == (512, 1536, 2048, 128)
    assert operands.check_layout("rowwise", *layout()) == (512, 1536, 2048, 128)
    assert operands.check_layout.cache_info().hits == 1


@pytest.mark.parametrize("override, message", [
    ({"a": (torch.Size([512, 2048]), torch.bfloat16, True, 0)}, "a must be float8_e4m3fn"),
    ({"b": (torch.Size([128, 1536, 1024]), torch.float8_e4m3fn, True, 0)}, r"b's K \(1024\) must equal"),
    ({"out": (torch.Size([512, 1536]), torch.bfloat16, False, 0)}, "out must be contiguous"),
    ({"offs": (torch.Size([127]), torch.int32, True, 0)}, r"offs must have shape \[128\]"),
    ({"scale_b": (torch.Size([128]), torch.float32, True, 0)}, r"scale_b must be \[G=128, N=1536\]"),
    ({"scale_a": (torch.Size([512]), torch.float32, True, -1)}, "scale_a must be a CUDA tensor"),
    ({"out": (torch.Size([512, 1536]), torch.bfloat16, True, 1)}, "out must be on cuda:0 like a, got cuda:1"),
])
def test_operand_layout_errors_name_the_operand(override, message):
    with pytest.raises(ValueError, match=message):
        operands.check_layout("rowwise", *layout(**override))


def test_grouped_gemm_row_tiles_are_refused_past_the_grid_y_limit():
    from gpuhil.kernels.tiles import check_grouped_grid_rows

    check_grouped_grid_rows(64, 64 * 65535 - 64, 1)  # 65534 + 1 row tiles: at the limit
    with pytest.raises(ValueError, match=r"ceil\(T/tile_m\) \+ G = 65536 exceeds the grid.y limit 65535"):
        check_grouped_grid_rows(64, 64 * 65535 - 63, 1)
