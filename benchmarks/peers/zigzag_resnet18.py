"""ResNet-18 on ZigZag's `tpu_like` accelerator, side by side with tegel on the same chip.

Not run in CI: it needs ZigZag, which tegel does not depend on. Install it in a throwaway
environment, write the model with tegel's zoo, and point this script at that interpreter:

    python3 -m venv /tmp/zz
    /tmp/zz/bin/pip install zigzag-dse onnx six     # zigzag-dse 3.9.1 imports six undeclared
    tegel make-model resnet18 /tmp/resnet18.onnx --batch 1
    python benchmarks/peers/zigzag_resnet18.py --zigzag-python /tmp/zz/bin/python \
        [--onnx /tmp/resnet18.onnx] [--json out.json] [--zigzag-result zz.json]

ZigZag runs in a subprocess: `zigzag.api.get_hardware_performance_zigzag(workload=ONNX,
accelerator=<its tpu_like.yaml>, mapping=<its tpu_like mapping>, opt="latency")` with its
defaults (LOMA temporal mapping search, lpf_limit 6, no inter-layer data locality), timed around
that call. tegel runs `tegel.run_graph(load_onnx(ONNX, 1), load_system(tpu_like.yaml))` in int8
(ZigZag's ONNX parser gives weights and activations 8 bits), default schedule, analytical
evaluator, with `spill_activations` (every layer reads its input from DRAM and writes its output
there, as ZigZag evaluates each layer alone), timed as the median of 3 (load_onnx + run_graph);
and once more without it (tegel's default: activations stay in the SRAM when they fit).
`benchmarks/peers/tpu_like.yaml` describes ZigZag's chip (array, clock 1 GHz so cycles = ns,
per-access energies / port width).

ZigZag prices only the Conv and Gemm layers (Relu, Add, MaxPool, ReduceMean and Reshape are not
costed); tegel prices every op. The table compares the 21 GEMM layers one to one and gives tegel's
whole-graph total apart. `--zigzag-result FILE` reuses a ZigZag JSON written by `--json` (its
"zigzag" part) instead of running ZigZag again. Results and reasons: docs/peers.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHIP = HERE / "tpu_like.yaml"

# Run by the ZigZag interpreter: argv[1] = ONNX path, argv[2] = output JSON, argv[3] = dump dir.
DRIVER = r'''
import json, os, sys, time
from importlib.metadata import version
import zigzag
from zigzag.api import get_hardware_performance_zigzag

inputs = os.path.join(os.path.dirname(zigzag.__file__), "inputs")
accelerator = os.path.join(inputs, "hardware", "tpu_like.yaml")
mapping = os.path.join(inputs, "mapping", "tpu_like.yaml")
t0 = time.perf_counter()
energy, latency, cmes = get_hardware_performance_zigzag(
    workload=sys.argv[1], accelerator=accelerator, mapping=mapping, opt="latency",
    dump_folder=sys.argv[3], loma_show_progress_bar=False)
wall = time.perf_counter() - t0
layers = []
for cme, _ in cmes[0][1]:
    hierarchy = cme.accelerator.memory_hierarchy
    per_memory = {}
    for layer_op, per_level in cme.mem_energy_breakdown.items():
        mem_op = cme.memory_operand_links.layer_to_mem_op(layer_op)
        levels = hierarchy.get_memory_levels(mem_op=mem_op)
        for level, joules in zip(levels, per_level):
            name = level.memory_instance.name
            per_memory[name] = per_memory.get(name, 0.0) + joules
    layers.append({
        "name": cme.layer.name, "macs": cme.layer.total_mac_count,
        "latency_cycles": cme.latency_total2, "compute_cycles": cme.ideal_temporal_cycle,
        "energy_pj": cme.energy_total, "mac_energy_pj": cme.mac_energy,
        "memory_energy_pj": per_memory,
        "spatial_mapping": str(cme.layer.spatial_mapping),
    })
json.dump({"version": version("zigzag-dse"), "accelerator": accelerator, "mapping": mapping,
           "energy_pj": energy, "latency_cycles": latency, "wall_s": wall, "layers": layers},
          open(sys.argv[2], "w"), indent=1)
'''


def run_zigzag(python: str, onnx: Path) -> dict:
    """ZigZag's per-layer and total figures, and the wall time of its API call."""
    with tempfile.TemporaryDirectory() as tmp:
        driver, out = Path(tmp) / "driver.py", Path(tmp) / "zigzag.json"
        driver.write_text(DRIVER)
        t0 = time.perf_counter()
        proc = subprocess.run([python, str(driver), str(onnx), str(out), str(Path(tmp) / "dump")],
                              cwd=tmp, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"ZigZag failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        result = json.loads(out.read_text())
        result["process_wall_s"] = time.perf_counter() - t0
    return result


def run_tegel(onnx: Path, repeats: int = 3) -> dict:
    """tegel's per-op and total figures on benchmarks/peers/tpu_like.yaml; wall time median."""
    import tegel
    from tegel.hardware import load_system
    from tegel.mapping.params import default_params
    from tegel.serving.graph_run import GraphRunOptions
    from tegel.workload.ir import GEMM_KINDS
    from tegel.workload.onnx_frontend import load_onnx

    system = load_system(str(CHIP))
    options = GraphRunOptions(precision="int8", spill_activations=True)
    walls, result, graph = [], None, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        graph = load_onnx(onnx, 1)
        result = tegel.run_graph(graph, system, options=options)
        walls.append(time.perf_counter() - t0)
    assert result is not None and graph is not None
    kinds = {op.name: op.kind for op in graph.ops}
    ops = [row.to_dict() for row in result.ops]
    gemm = [o for o in ops if kinds.get(o["key"]) in GEMM_KINDS]
    gemm_levels: dict[str, float] = {}
    for o in gemm:
        for k, v in o["energy_j"].items():
            gemm_levels[k] = gemm_levels.get(k, 0.0) + v
    # sensitivity, not the headline: DRAM at its full port rate, as ZigZag assumes (tegel's
    # default dataflow calibration achieves 75 % of off-chip bandwidth, mapping/data/dataflow.yaml)
    params = default_params()
    full = replace(params, dataflow=replace(params.dataflow, offchip_bandwidth_fraction=1.0))
    ideal = tegel.run_graph(graph, system, options=options, params=full)
    ideal_gemm_s = sum(r.time_s for r in ideal.ops if kinds.get(r.key) in GEMM_KINDS)
    # tegel's own default: activations stay in the SRAM between layers where they fit
    kept = tegel.run_graph(graph, system, options=GraphRunOptions(precision="int8"))
    kept_gemm = [r for r in kept.ops if kinds.get(r.key) in GEMM_KINDS]
    return {
        "version": tegel.__version__ if hasattr(tegel, "__version__") else "",
        "schedule": result.schedule.value, "notes": list(result.notes),
        "latency_s": result.latency_s, "energy_j": result.energy_j_per_inference,
        "energy_by_level_j": result.energy_by_level_j(), "gemm_energy_by_level_j": gemm_levels,
        "full_dram_rate": {"latency_s": ideal.latency_s, "gemm_latency_s": ideal_gemm_s},
        "activations_kept": {"latency_s": kept.latency_s, "energy_j": kept.energy_j_per_inference,
                             "gemm_latency_s": sum(r.time_s for r in kept_gemm),
                             "gemm_energy_j": sum(r.energy_total_j for r in kept_gemm)},
        "ops_time_s": sum(o["time_s"] for o in ops),
        "wall_s": statistics.median(walls), "walls_s": walls,
        "layers": [{"name": o["key"], "kind": kinds[o["key"]].value, "macs": o["macs"],
                    "latency_s": o["time_s"], "bound": o["bound"],
                    "energy_j": o["energy_total_j"], "energy_by_level_j": o["energy_j"]}
                   for o in gemm],
    }


def pair_layers(zz: dict, tg: dict) -> list[dict]:
    """ZigZag's layers and tegel's GEMM ops matched in graph order (ONNX Conv/Gemm order; tegel
    keeps the ONNX node order), checked by MAC count."""
    import onnx

    model = onnx.load(zz.get("onnx", "/tmp/resnet18.onnx"), load_external_data=False)
    order = [n.name for n in model.graph.node if n.op_type in ("Conv", "Gemm")]
    by_name = {layer["name"]: layer for layer in zz["layers"]}
    rows = []
    for name, t in zip(order, tg["layers"], strict=True):
        z = by_name[name]
        if abs(z["macs"] - t["macs"]) > 0.5:
            raise SystemExit(f"layer mismatch: ZigZag {name} {z['macs']} MACs, "
                             f"tegel {t['name']} {t['macs']}")
        rows.append({"zigzag": name, "tegel": t["name"], "macs": z["macs"],
                     "zigzag_cycles": z["latency_cycles"], "tegel_cycles": t["latency_s"] * 1e9,
                     "zigzag_energy_nj": z["energy_pj"] / 1e3,
                     "tegel_energy_nj": t["energy_j"] * 1e9, "tegel_bound": t["bound"],
                     "zigzag_spatial": z["spatial_mapping"]})
    return rows


def pct(a: float, b: float) -> str:
    return f"{(a - b) / b * 100:+.0f}%" if b else "n/a"


def table(result: dict) -> str:
    zz, tg, rows = result["zigzag"], result["tegel"], result["layers"]
    lines = [f"ZigZag {zz['version']} vs tegel on ZigZag's tpu_like (1 GHz: cycles = ns), "
             f"ResNet-18 batch 1, int8", "",
             f"{'layer (ZigZag / tegel)':32} {'MMACs':>7} {'ZZ kcyc':>9} {'tegel kcyc':>10} "
             f"{'diff':>6} {'ZZ uJ':>8} {'tegel uJ':>8} {'diff':>6}  tegel bound"]
    for r in rows:
        lines.append(
            f"{r['zigzag'] + ' / ' + r['tegel']:32} {r['macs'] / 1e6:7.1f} "
            f"{r['zigzag_cycles'] / 1e3:9.1f} {r['tegel_cycles'] / 1e3:10.1f} "
            f"{pct(r['tegel_cycles'], r['zigzag_cycles']):>6} {r['zigzag_energy_nj'] / 1e3:8.2f} "
            f"{r['tegel_energy_nj'] / 1e3:8.2f} {pct(r['tegel_energy_nj'], r['zigzag_energy_nj']):>6}"
            f"  {r['tegel_bound']}")
    s = result["summary"]
    lines += [
        "",
        f"{'Conv + Gemm layers':32} {'':7} {s['zigzag_cycles'] / 1e3:9.1f} "
        f"{s['tegel_gemm_cycles'] / 1e3:10.1f} {pct(s['tegel_gemm_cycles'], s['zigzag_cycles']):>6} "
        f"{s['zigzag_energy_uj']:8.1f} {s['tegel_gemm_energy_uj']:8.1f} "
        f"{pct(s['tegel_gemm_energy_uj'], s['zigzag_energy_uj']):>6}",
        f"{'tegel whole graph (+ relu, add,':32} {'':7} {'':9} {s['tegel_cycles'] / 1e3:10.1f} "
        f"{pct(s['tegel_cycles'], s['zigzag_cycles']):>6} {'':8} {s['tegel_energy_uj']:8.1f} "
        f"{pct(s['tegel_energy_uj'], s['zigzag_energy_uj']):>6}",
        "  pools; ZigZag does not cost them)",
        "",
        f"{'tegel, DRAM at its full port':32} {'':7} {'':9} "
        f"{s['tegel_full_dram_gemm_cycles'] / 1e3:10.1f} "
        f"{pct(s['tegel_full_dram_gemm_cycles'], s['zigzag_cycles']):>6}  (Conv + Gemm; whole graph "
        f"{s['tegel_full_dram_cycles'] / 1e3:.1f}; sensitivity: offchip_bandwidth_fraction 1.0)",
        f"{'tegel, activations kept on chip':32} {'':7} {'':9} "
        f"{s['tegel_kept_gemm_cycles'] / 1e3:10.1f} "
        f"{pct(s['tegel_kept_gemm_cycles'], s['zigzag_cycles']):>6} {'':8} "
        f"{s['tegel_kept_gemm_energy_uj']:8.1f} "
        f"{pct(s['tegel_kept_gemm_energy_uj'], s['zigzag_energy_uj']):>6}  (Conv + Gemm; tegel's "
        f"default placement; whole graph {s['tegel_kept_cycles'] / 1e3:.1f} kcycles, "
        f"{s['tegel_kept_energy_uj']:.1f} uJ)",
        "",
        "Conv + Gemm energy by level, uJ:  " + ", ".join(
            f"{k} ZZ {s['zigzag_by_level_uj'].get(k, 0.0):.1f} / tegel "
            f"{s['tegel_by_level_uj'].get(k, 0.0):.1f}"
            for k in ("mac", "rf_128B", "rf_2B", "sram_2MB", "dram")),
        f"wall time: ZigZag {zz['wall_s']:.1f} s (API call; {zz['process_wall_s']:.1f} s with "
        f"Python start and imports), tegel {tg['wall_s'] * 1e3:.0f} ms (median of "
        f"{len(tg['walls_s'])}, load_onnx + run_graph): {zz['wall_s'] / tg['wall_s']:.0f}x",
        f"tegel schedule: {tg['schedule']}; " + "; ".join(tg["notes"]),
    ]
    return "\n".join(lines)


def summarise(zz: dict, tg: dict) -> dict:
    zz_levels: dict[str, float] = {"mac": sum(lv["mac_energy_pj"] for lv in zz["layers"]) / 1e6}
    for layer in zz["layers"]:
        for k, v in layer["memory_energy_pj"].items():
            zz_levels[k] = zz_levels.get(k, 0.0) + v / 1e6
    tg_levels = {("mac" if k == "compute" else "dram" if k == "ddr5" else k): v * 1e6
                 for k, v in tg["gemm_energy_by_level_j"].items() if v}
    return {
        "zigzag_cycles": zz["latency_cycles"], "zigzag_energy_uj": zz["energy_pj"] / 1e6,
        "tegel_gemm_cycles": sum(t["latency_s"] for t in tg["layers"]) * 1e9,
        "tegel_gemm_energy_uj": sum(t["energy_j"] for t in tg["layers"]) * 1e6,
        "tegel_cycles": tg["latency_s"] * 1e9, "tegel_energy_uj": tg["energy_j"] * 1e6,
        "zigzag_by_level_uj": zz_levels, "tegel_by_level_uj": tg_levels,
        "tegel_full_dram_gemm_cycles": tg["full_dram_rate"]["gemm_latency_s"] * 1e9,
        "tegel_full_dram_cycles": tg["full_dram_rate"]["latency_s"] * 1e9,
        "tegel_kept_gemm_cycles": tg["activations_kept"]["gemm_latency_s"] * 1e9,
        "tegel_kept_gemm_energy_uj": tg["activations_kept"]["gemm_energy_j"] * 1e6,
        "tegel_kept_cycles": tg["activations_kept"]["latency_s"] * 1e9,
        "tegel_kept_energy_uj": tg["activations_kept"]["energy_j"] * 1e6,
        "speedup": zz["wall_s"] / tg["wall_s"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zigzag-python", default="/tmp/zz/bin/python",
                    help="interpreter with zigzag-dse installed")
    ap.add_argument("--onnx", type=Path, default=Path("/tmp/resnet18.onnx"))
    ap.add_argument("--zigzag-result", type=Path, help="reuse a ZigZag result (--json's file)")
    ap.add_argument("--json", type=Path, help="write everything here")
    args = ap.parse_args(argv)
    if not args.onnx.exists():
        sys.exit(f"{args.onnx} missing: tegel make-model resnet18 {args.onnx} --batch 1")
    if args.zigzag_result:
        zz = json.loads(args.zigzag_result.read_text())["zigzag"]
    else:
        zz = run_zigzag(args.zigzag_python, args.onnx.resolve())
    zz["onnx"] = str(args.onnx)
    tg = run_tegel(args.onnx)
    result = {"zigzag": zz, "tegel": tg, "layers": pair_layers(zz, tg)}
    result["summary"] = summarise(zz, tg)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
