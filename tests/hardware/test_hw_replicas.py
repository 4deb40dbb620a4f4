"""`NxNAME` systems: one builder (`replicated`) for `--on` and the fidelity cases, case-insensitive
preset names with suggestions, and which network joins which two chips."""

from __future__ import annotations

import pytest

from tegel.errors import TegelError
from tegel.fidelity.cases import gpu_system
from tegel.hardware import load_system


@pytest.mark.parametrize("name", ["2xdgx-h100", "16xh100-sxm", "16x-h100-sxm", "2 x DGX-H100",
                                  "16×h100-sxm"])
def test_sixteen_h100s_in_two_dgx_nodes(name: str) -> None:
    system = load_system(name)
    dgx = load_system("dgx-h100")
    assert system.chip_count == 16 and system.node_count == 2
    assert system.scale_up == dgx.scale_up and system.scale_out == dgx.scale_out
    assert system.tdp_w == pytest.approx(2 * dgx.tdp_w)


def test_fidelity_systems_are_the_ones_on_accepts() -> None:
    for chips in (2, 16, 32):
        made = gpu_system("h100-sxm", chips)
        assert load_system(made.name) == made
    assert gpu_system("h100-sxm", 8) == load_system("dgx-h100")


def test_scale_up_within_a_node_scale_out_between() -> None:
    system = load_system("2xdgx-h100")
    assert system.link_between(0, 7) is system.scale_up
    assert system.link_between(7, 8) is system.scale_out
    assert system.link_between(3, 3) is None
    with pytest.raises(TegelError, match="out of range"):
        system.link_between(0, 16)


def test_a_chip_uses_its_smallest_node() -> None:
    assert load_system("16xb200").scale_up == load_system("hgx-b200").scale_up
    assert load_system("1xh100-sxm") == load_system("h100-sxm")


@pytest.mark.parametrize(("name", "message"), [
    ("2xgroq-576", "no scale_out network"),
    ("4xgroq-lpu", "no node preset holds groq-lpu"),
    ("0xdgx-h100", "at least 1"),
    ("2xdgx-h10", "did you mean dgx-h100"),
])
def test_refusals_say_why(name: str, message: str) -> None:
    with pytest.raises(TegelError, match=message):
        load_system(name)


def test_names_are_case_insensitive_with_suggestions() -> None:
    assert load_system("H100-SXM").name == "h100-sxm"
    with pytest.raises(TegelError, match="did you mean h100-sxm"):
        load_system("h100sxm")


def test_gb200_nvl72_is_one_nvlink_domain_and_racks_join_over_scale_out() -> None:
    rack = load_system("gb200-nvl72")
    assert rack.chip_count == rack.chips_per_node == 72
    assert rack.link_between(0, 71) is rack.scale_up and rack.scale_up.kind == "nvlink"
    two = load_system("2xgb200-nvl72")
    assert two.chip_count == 144 and two.node_count == 2
    assert two.link_between(71, 72) is two.scale_out


@pytest.mark.parametrize("chip", ["h100-sxm", "h200", "b200", "mi300x", "a100-80gb"])
def test_every_gpu_system_validate_builds_runs_under_its_name(chip: str) -> None:
    for chips in (2, 16):
        made = gpu_system(chip, chips)
        assert made.name == f"{chips}x-{chip}"
        assert load_system(made.name) == made


def test_a_pod_wide_scale_up_network_spans_hosts() -> None:
    pod = load_system("tpu-v6e-256")
    assert pod.chips_per_node == 8 and pod.scale_up_domain == 256
    assert pod.link_between(0, 255) is pod.scale_up  # different hosts, one ICI torus
    two = load_system("2xtpu-v6e-256")
    assert two.chip_count == 512 and two.link_between(255, 256) is two.scale_out
    assert load_system("dgx-h100").scale_up_domain == 8


def test_dataflow_routes_leave_a_scale_up_domain_through_scale_out() -> None:
    from tegel.mapping.routing import chip_route

    two = load_system("2xtrn2-16")
    inside = chip_route(0, 5, two)
    assert inside and all(lk.bytes_per_s == two.scale_up.link_bytes_per_s / 4 for lk in inside)
    across = chip_route(3, 20, two)
    assert [lk.bytes_per_s for lk in across] == [two.scale_out.link_bytes_per_s] * 2
    second = chip_route(16, 21, two)  # the second instance's torus, numbered from 16
    assert [(lk.chip, lk.line) for lk in second] == [(16 + a, 16 + b) for a, b in
                                                     [(lk.chip, lk.line) for lk in inside]]
    assert load_system("groq-576").scale_up_domain == 576  # no scale-out: one C2C domain
