"""Higher-order operators with subgraphs on the torchbind executor: its engine does not run them.

It says so (``Capabilities.unsupported_ops``, ``supports``), refuses them at load naming the
operator, and a priority list places them on the proxy, bit for bit equal to aten.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

import torchexec
import torchexec_proxy
from torchexec_torchbind import encode_plan

pytestmark = pytest.mark.usefixtures("engine_lib")

T = torch.Tensor
cond: Any = torch.cond  # untyped for mypy: its stub does not describe pytrees


class Model(nn.Module):
    def forward(self, x: T) -> Any:
        y = cond(x.sum() > 0, lambda x: x.sin() * 2, lambda x: x.cos() - 1, (x.abs() - 1,))
        return y + x


def _ep(x: T) -> torch.export.ExportedProgram:
    return torch.export.export(Model(), (x,), strict=False)


def test_capabilities_list_the_higher_order_operators() -> None:
    infos = {i.name: i for i in torchexec.list_executors()}
    caps, proxy_caps = infos["torchbind"].capabilities, infos["proxy"].capabilities
    assert caps is not None and proxy_caps is not None
    assert {"higher_order::cond", "higher_order::while_loop", "higher_order::map_impl",
            "higher_order::scan"} <= caps.unsupported_ops  # fmt: skip
    assert "higher_order::cond" not in proxy_caps.unsupported_ops


def test_refused_at_load_naming_the_operator() -> None:
    x = torch.randn(3)
    with pytest.raises(torchexec.UnsupportedOperatorError, match=r"higher_order::cond"):
        torchexec.prepare(_ep(x), x, executor="torchbind")


def test_encoding_a_plan_with_one_names_it() -> None:
    plan = torchexec_proxy.load_plan(torchexec.Program.from_exported(_ep(torch.randn(3))))
    with pytest.raises(torchexec.ProgramError, match=r"node 'cond'.*higher-order operator 'cond'"):
        encode_plan(plan, allowed_namespaces=["aten"])


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_priority_list_runs_it_on_the_proxy(sign: float) -> None:
    x = torch.full((3,), 2.0 * sign)
    ep = _ep(x)
    run = torchexec.prepare(ep, x, executor=["torchbind", "proxy"])
    assert run.placement.operators("proxy") == {"higher_order::cond": 1}
    assert run.placement.operators("torchbind")
    for args in ((x,), (torch.randn(3),)):
        expected = torchexec.execute(ep, *args, executor="aten")
        actual = run(*args)
        assert torch.equal(expected, actual)
