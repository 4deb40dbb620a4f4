"""Fit the dataflow policy's deployment overheads on the training entries of the published
dataflow single-user speeds, and write them with the date and objective.

    python tools/calibrate_dataflow.py            # rewrites src/tegel/mapping/data/dataflow_calibration.yaml
    python tools/calibrate_dataflow.py --write FILE   # elsewhere; use it with --params FILE

Only entries marked `train` in src/tegel/fidelity/data/dataflow_single_user.yaml are fitted; the
held-out ones are predicted afterwards and their MAPE written beside the training MAPE. The fit
starts from the shipped file's central values (`value` in mapping/data/dataflow.yaml), not from
an earlier calibration, so rerunning it gives the same file (but for the date).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SHIPPED = Path(__file__).parents[1] / "src" / "tegel" / "mapping" / "data" / "dataflow_calibration.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, default=SHIPPED,
                        help="where to write the calibration (default: the shipped file)")
    parser.add_argument("--passes", type=int, default=2, help="coordinate-descent passes")
    args = parser.parse_args(argv)

    from tegel.fidelity.dataflow import (
        calibrate_dataflow,
        validate_dataflow,
        write_dataflow_calibration,
    )
    from tegel.mapping.params import default_params, uncalibrated_dataflow

    start = default_params().with_dataflow(uncalibrated_dataflow(), "central values")
    values, before, after = calibrate_dataflow(
        start, passes=args.passes, progress=lambda line: print(line, file=sys.stderr))
    held_out = validate_dataflow(start.with_dataflow(values, "calibration"), sets=("held_out",))
    written = write_dataflow_calibration(values, before, after, held_out, args.write)
    print(f"training MAPE {before.mape('train'):.1f}% -> {after.mape('train'):.1f}%; "
          f"held out {held_out.mape('held_out'):.1f}%")
    for key, value in values.items():
        print(f"  {key} = {value:.4g}")
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
