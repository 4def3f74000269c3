"""Small programs through ``torchexec.execute``: the proxy must match ``aten`` bit for bit.

Every program reaches the proxy as ExportedProgram JSON (the core serializes the exported
program), so these tests also exercise the JSON reader on each argument kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import torchexec


def _f(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


Case = tuple[Callable[..., Any], Callable[[], tuple[Any, ...]]]

ELEMENTWISE: dict[str, Case] = {
    "add_mul_sub_div": (lambda x, y: (x + y, x * y, x - y, x / y), lambda: (_f(3, 4), _f(3, 4))),
    "broadcast": (lambda x, y: x * y + 1, lambda: (_f(3, 1), _f(1, 4))),
    "unary_chain": (lambda x: torch.tanh(torch.sigmoid(torch.relu(x)).exp()), lambda: (_f(5),)),
    "nan_positions": (lambda x: (torch.log(x), torch.sqrt(x), x / 0), lambda: (_f(16),)),
    "where_clamp": (lambda x, y: torch.where(x > y, x, y).clamp(-0.5, 0.5), lambda: (_f(6), _f(6))),
    "compare_bool": (lambda x, y: (x < y, x >= y, (x < y) & (x > 0)), lambda: (_f(6), _f(6))),
    "pow_abs_neg": (lambda x: (x.abs() ** 1.5, -x, torch.pow(2.0, x)), lambda: (_f(5),)),
    "half_bfloat16": (
        lambda x: (x.half() * 3, x.bfloat16() + 1, x.to(torch.float64) / 7),
        lambda: (_f(8),),
    ),
    "integer_ops": (
        lambda a, b: (a // b, a % b, a & b, a | b, a ^ b, a << 1, a * 3),
        lambda: (torch.arange(1, 9), torch.arange(8, 0, -1)),
    ),
    "bool_ops": (
        lambda a, b: (a & b, a | b, ~a, torch.logical_xor(a, b)),
        lambda: (torch.tensor([True, False, True]), torch.tensor([True, True, False])),
    ),
    "scalar_kinds": (lambda x: (x * 2, x + 2.5, x + True, x * 0.1), lambda: (_f(4),)),
    "complex_scalar": (lambda x: x * 1j + 2, lambda: (_f(4),)),
}

REDUCTIONS: dict[str, Case] = {
    "sum_mean": (lambda x: (x.sum(), x.mean(dim=1), x.sum(dim=[0, 1], keepdim=True)), lambda: (_f(3, 4),)),
    "dtype_kwarg": (lambda x: (x.sum(dtype=torch.float64), x.cumsum(0, dtype=torch.float64)), lambda: (_f(5),)),
    "max_argmax": (lambda x: (x.amax(1), x.argmax(1), x.argmin()), lambda: (_f(3, 4),)),
    "var_std": (lambda x: (x.var(1), x.std(0, correction=0), *torch.var_mean(x, 1)), lambda: (_f(3, 4),)),
    "softmax": (lambda x: (F.softmax(x, -1), F.log_softmax(x, 0), x.logsumexp(1)), lambda: (_f(3, 4),)),
    "prod_int": (lambda x: (x.prod(), x.sum(1)), lambda: (torch.arange(1, 7).reshape(2, 3),)),
}  # fmt: skip

VIEWS: dict[str, Case] = {
    "reshape_permute": (lambda x: x.reshape(4, 6).permute(1, 0).contiguous(), lambda: (_f(2, 3, 4),)),
    "slicing": (lambda x: (x[1:, ::2], x[:, 1], x[..., -1:], x.narrow(0, 1, 1)), lambda: (_f(3, 4),)),
    "unsqueeze_expand": (lambda x: x.unsqueeze(0).expand(3, 2, 4).flatten(), lambda: (_f(2, 4),)),
    "transpose_t": (lambda x: (x.t(), x.transpose(0, 1) @ x, x.diagonal()), lambda: (_f(4, 4),)),
    "view_returns_input": (lambda x: (x, x.view(-1), x), lambda: (_f(2, 3),)),
}  # fmt: skip

MULTI_OUTPUT: dict[str, Case] = {
    "split_chunk_unbind": (lambda x: (x.split(2, 1), x.chunk(3, 0), x.unbind(0)), lambda: (_f(3, 5),)),
    "topk_sort": (lambda x: (*torch.topk(x, 2), *torch.sort(x, 1, descending=True)), lambda: (_f(3, 5),)),
    "max_min_dim": (lambda x: (*torch.max(x, 1), *torch.min(x, 0, keepdim=True)), lambda: (_f(3, 5),)),
    "getitem_one_of_two": (lambda x: torch.max(x, 1)[1] + torch.topk(x, 1)[0].sum(), lambda: (_f(3, 5),)),
    "native_layer_norm": (
        lambda x, w, b: torch.ops.aten.native_layer_norm(x, [4], w, b, 1e-5),
        lambda: (_f(2, 3, 4), _f(4), _f(4)),
    ),
    "native_layer_norm_no_affine": (
        lambda x: torch.ops.aten.native_layer_norm(x, [3, 4], None, None, 1e-5),
        lambda: (_f(2, 3, 4),),
    ),
    "aminmax": (lambda x: tuple(torch.aminmax(x, dim=0)), lambda: (_f(3, 4),)),
}  # fmt: skip

ARGUMENT_KINDS: dict[str, Case] = {
    "dtype_device_factory": (
        lambda x: (torch.full((2, 3), 1.5, dtype=torch.float16), torch.zeros(3, device="cpu") + x,
                   torch.arange(0, 10, 3), torch.ones_like(x, dtype=torch.int32)),
        lambda: (_f(3),),
    ),
    "memory_format": (
        lambda x: x.clone(memory_format=torch.channels_last).contiguous() * 2,
        lambda: (_f(1, 3, 4, 4),),
    ),
    "int_list_args": (lambda x: (x.repeat(2, 1), x.permute([1, 0]), x.new_zeros([2, 2])), lambda: (_f(2, 3),)),
    "float_list_and_str": (
        lambda x: (F.interpolate(x, scale_factor=2.0, mode="nearest"), torch.div(x, 3, rounding_mode="floor")),
        lambda: (_f(1, 2, 3, 3),),
    ),
    "optional_tensors": (lambda x, w: (F.linear(x, w), F.linear(x, w, None) + 1), lambda: (_f(2, 3), _f(4, 3))),
    "tensor_list_cat_stack": (lambda x, y: (torch.cat([x, y], 1), torch.stack([x, y, x])), lambda: (_f(2, 3), _f(2, 3))),
    "optional_tensor_list_index": (
        lambda x, i: (x[i], x[:, i], x[i, i]),
        lambda: (_f(4, 4), torch.tensor([3, 0, 1])),
    ),
    "conv_pool": (
        lambda x, w: F.max_pool2d(F.conv2d(x, w, stride=1, padding=1), 2),
        lambda: (_f(1, 2, 6, 6), _f(3, 2, 3, 3)),
    ),
    "lifted_constant": (lambda x: x + torch.tensor([1.0, 2.0, 3.0]), lambda: (_f(3),)),
    "non_finite_constants": (
        lambda x: (x.masked_fill(x > 0, float("-inf")), x.clamp(max=float("inf")),
                   torch.full((2,), float("nan")), x != float("inf")),
        lambda: (_f(4),),
    ),
    "none_and_int_outputs": (lambda x: (x * 2, None, 3), lambda: (_f(2),)),
    "nested_outputs": (lambda x, y: {"s": x + y, "pair": (x * y, [x - y])}, lambda: (_f(2), _f(2))),
    "user_input_mutation": (lambda x, y: (x.add_(y), y * 2), lambda: (_f(3), _f(3))),
}  # fmt: skip

ALL: dict[str, Case] = {
    **{f"elementwise/{k}": v for k, v in ELEMENTWISE.items()},
    **{f"reduction/{k}": v for k, v in REDUCTIONS.items()},
    **{f"view/{k}": v for k, v in VIEWS.items()},
    **{f"multi/{k}": v for k, v in MULTI_OUTPUT.items()},
    **{f"args/{k}": v for k, v in ARGUMENT_KINDS.items()},
}


@pytest.mark.parametrize("case", sorted(ALL))
def test_matches_aten_bit_for_bit(case: str, check_against_aten: Any) -> None:
    torch.manual_seed(sum(map(ord, case)))
    fn, make_args = ALL[case]
    check_against_aten(fn, *make_args())


def test_second_call_reuses_runner_and_stays_exact(check_against_aten: Any, bitwise: Any) -> None:
    torch.manual_seed(0)
    x, y = _f(3, 4), _f(3, 4)
    fn = ELEMENTWISE["add_mul_sub_div"][0]
    check_against_aten(fn, x, y)
    before = torchexec.cache_info().hits
    again = torchexec.execute(fn, x, y, executor="proxy")
    assert torchexec.cache_info().hits == before + 1
    bitwise(fn(x, y), again)


def test_prepared_program_runs_new_values(bitwise: Any) -> None:
    torch.manual_seed(1)
    fn = MULTI_OUTPUT["topk_sort"][0]
    run = torchexec.prepare(fn, _f(3, 5), executor="proxy")
    for _ in range(3):
        x = _f(3, 5)
        bitwise(fn(x), run(x))


def test_graph_module_from_make_fx(bitwise: Any) -> None:
    from torch.fx.experimental.proxy_tensor import make_fx

    gm = make_fx(lambda a, b: torch.relu(a @ b).sum(1))(_f(3, 4), _f(4, 5))
    x, y = _f(3, 4), _f(4, 5)
    bitwise(
        torchexec.execute(gm, x, y, executor="aten"), torchexec.execute(gm, x, y, executor="proxy")
    )
