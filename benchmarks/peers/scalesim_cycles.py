"""Record SCALE-Sim v3's total cycles for a grid of GEMMs, for tegel's `fold_overlap: none` check.

Not run in CI: it needs SCALE-Sim, which tegel does not depend on. Install it in a throwaway
environment and point this script at that interpreter:

    python3 -m venv /tmp/scalesim-venv
    /tmp/scalesim-venv/bin/pip install scalesim==3.0.0 "numpy<2" "pandas<2.3"
    python benchmarks/peers/scalesim_cycles.py --python /tmp/scalesim-venv/bin/python \
        --out tests/simulate/data/scalesim_v3_cycles.json

(scalesim 3.0.0 fails on NumPy 2: `int(max(ofmap_serviced_cycles))` in
memory/double_buffered_scratchpad_mem.py converts a 1-element array.) For each array shape and
dataflow the script writes a SCALE-Sim config (SRAMs large enough and `InterfaceBandwidth: CALC`, so
that no stall is charged: the recorded runs all report 0 stall cycles, which the script checks), a
GEMM topology with one layer per (M, N, K), and runs

    <python> -m scalesim.scale -c <cfg> -t <topology.csv> -l <layout.csv> -p <dir> -i gemm -s N

then reads `Total Cycles` from COMPUTE_REPORT.csv. SCALE-Sim's GEMM topology rows are
`name, M, N, K` with ifmap M x K, filter K x N, ofmap M x N: tegel's a, w and out.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import subprocess
import tempfile
from pathlib import Path

ARRAYS = ((4, 4), (8, 4), (4, 8), (3, 5), (1, 6), (16, 16), (32, 8), (64, 32), (128, 128))
SHAPES = ((1, 1, 1), (3, 5, 7), (7, 5, 9), (17, 33, 20), (40, 12, 65), (64, 64, 64),
          (100, 37, 53), (130, 150, 129), (1, 256, 200), (256, 3, 70))
DATAFLOWS = ("ws", "os", "is")

CONFIG = """[general]
run_name = {name}

[architecture_presets]
ArrayHeight:    {rows}
ArrayWidth:     {cols}
IfmapSramSzkB:   4096
FilterSramSzkB:  4096
OfmapSramSzkB:   4096
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : 10
Dataflow : {dataflow}
MemoryBanks:   1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""
# A layout file must be given even with custom layouts off; its rows are then not used.
LAYOUT_HEADER = ("Layer name, IFMAP Height Intraline Factor, IFMAP Width Intraline Factor, "
                 "Filter Height Intraline Factor, Filter Width Intraline Factor, Channel Intraline "
                 "Factor, Num Filter Intraline Factor, IFMAP Height Intraline Order, IFMAP Width "
                 "Intraline Order, Channel Intraline Order, IFMAP Height Interline Order, IFMAP Width "
                 "Interline Order, Channel Interline Order, Num Filter Intraline Order, Channel "
                 "Intraline Order, Filter Height Intraline Order, Filter Width Intraline Order, Num "
                 "Filter Interline Order, Channel Interline Order, Filter Height Interline Order, "
                 "Filter Width Interline Order,\n")
LAYOUT_ROW = "{name},1,1,1,1,1,1,1,2,0,4,5,3,3,0,1,2,7,4,5,6,\n"
COMMAND = "{python} -m scalesim.scale -c {cfg} -t {topology} -l {layout} -p {logdir} -i gemm -s N"


def run_one(python: str, rows: int, cols: int, dataflow: str, work: Path) -> list[dict[str, object]]:
    """SCALE-Sim's report for every shape of SHAPES on one array and dataflow."""
    name = f"a{rows}x{cols}_{dataflow}"
    cfg, topology, layout = work / f"{name}.cfg", work / f"{name}.csv", work / f"{name}_layout.csv"
    cfg.write_text(CONFIG.format(name=name, rows=rows, cols=cols, dataflow=dataflow))
    layers = [f"g{m}_{n}_{k}" for m, n, k in SHAPES]
    topology.write_text("Layer, M, N, K,\n" + "".join(
        f"{layer}, {m}, {n}, {k},\n" for layer, (m, n, k) in zip(layers, SHAPES, strict=True)))
    layout.write_text(LAYOUT_HEADER + "".join(LAYOUT_ROW.format(name=layer) for layer in layers))
    command = COMMAND.format(python=python, cfg=cfg, topology=topology, layout=layout,
                             logdir=work / "out")
    subprocess.run(command.split(), check=True, capture_output=True, cwd=work)
    with open(work / "out" / name / "COMPUTE_REPORT.csv") as f:
        report = [{k.strip(): v.strip() for k, v in row.items() if k and k.strip()}
                  for row in csv.DictReader(f)]
    out = []
    for (m, n, k), row in zip(SHAPES, report, strict=True):
        if int(row["Stall Cycles"]) != 0:
            raise SystemExit(f"{name} {m}x{n}x{k}: SCALE-Sim charged stalls; enlarge the SRAMs")
        out.append({"rows": rows, "cols": cols, "dataflow": dataflow, "m": m, "n": n, "k": k,
                    "total_cycles": int(row["Total Cycles"])})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", required=True, help="interpreter with scalesim installed")
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args()
    version = subprocess.run([args.python, "-m", "pip", "show", "scalesim"], check=True,
                             capture_output=True, text=True).stdout.split("Version:")[1].split()[0]
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for (rows, cols), flow in itertools.product(ARRAYS, DATAFLOWS):
            records += run_one(args.python, rows, cols, flow, Path(tmp))
    header = json.dumps({
        "source": f"SCALE-Sim v3 (PyPI scalesim=={version}, whose Python files are those of "
                  "github.com/scalesim-project/scale-sim-v3 at commit "
                  "fab89b777d7363550b7560ff615a11f888db46b9 but for one comment line)",
        "command": COMMAND + "   (benchmarks/peers/scalesim_cycles.py; config: CONFIG there)",
        "field": "total_cycles is COMPUTE_REPORT.csv's 'Total Cycles' (stall cycles 0 in every run)",
        "records": []}, indent=1)
    lines = ",\n".join("  " + json.dumps(r) for r in records)  # one GEMM a line
    Path(args.out).write_text(header.replace('"records": []', '"records": [\n' + lines + "\n ]") + "\n")
    print(f"{len(records)} GEMMs written to {args.out}")


if __name__ == "__main__":
    main()
