"""The field's own tools side by side (issue 12): every peer next to GIM and the baselines on
every protocol it can serve, seeds 0–2, then one markdown page (OUT/README.md) with the tables
and each peer's install time and disk.

    python bench/peers.py --out runs/peers                   # all (hours on 2 cores)
    python bench/peers.py --out runs/peers --only sachs      # one protocol

Resumable: each (method, seed) is kept in OUT/<protocol>/jobs, so a rerun runs only what is
missing (``--fresh`` reruns everything). Peers must be installed first (``make peers``). On the
real screens the GIM rows are not rerun here (11 fits per seed on Papalexi): the README pairs
these tables with its ``papalexi2021`` / ``norman2019`` runs of the same seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from causalpert import peers
from causalpert._io import atomic_write
from causalpert.benchmark.report import headline_table, markdown_table
from causalpert.benchmark.runner import run_benchmark

PEERS = ["cellflow", "state", "stadion"]
BASELINES = ["gim", "mlp", "additive", "control"]

#: name → (protocol, sim, methods)
PLAN = {
    "paper-synthetic-linear": ("paper-synthetic", "linear", [*PEERS, *BASELINES]),
    "paper-synthetic-mlp": ("paper-synthetic", "mlp", [*PEERS, *BASELINES]),
    "sachs": ("sachs", "linear", [*PEERS, *BASELINES]),
    "papalexi2021": ("papalexi2021", "linear", [*PEERS, "additive", "control"]),
    "norman2019": ("norman2019", "linear", [*PEERS, "additive", "control"]),
}


def install_table() -> str:
    lines = ["| peer | install s | disk MB | status |", "|---|---|---|---|"]
    for row in peers.status():
        if row["peer"] == "fake":
            continue
        info_file = Path(row["path"]) / "install.json"
        info = json.loads(info_file.read_text()) if info_file.exists() else {}
        lines.append(f"| {row['peer']} | {info.get('seconds', float('nan')):.0f} | "
                     f"{info.get('megabytes', float('nan')):.0f} | {row['status']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--only", nargs="*", choices=sorted(PLAN), default=sorted(PLAN))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--skip", nargs="*", default=[], help="methods to leave out")
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    page = ["# Peers side by side", "", f"Seeds {args.seeds}; `python bench/peers.py --out "
            f"{args.out}`.", "", "## Install (each peer's own venv)", "", install_table(), ""]
    for name in args.only:
        protocol, sim, methods = PLAN[name]
        methods = [m for m in methods if m not in args.skip]
        print(f"[peers] {name}: {', '.join(methods)}", file=sys.stderr, flush=True)
        _, summary = run_benchmark(protocol=protocol, sim=sim, methods=methods, seeds=seeds,
                                   out=args.out / name, fresh=args.fresh)
        page += [f"## {name}", "", markdown_table(headline_table(summary)), ""]
    with atomic_write(args.out / "README.md") as fh:
        fh.write("\n".join(page))
    print("\n".join(page))


if __name__ == "__main__":
    main()
