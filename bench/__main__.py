"""The benchmark suite in one run: one table of figures, side by side, with their ratios.

    ./dev python -m bench                        # full sizes (1,000,000 cases for growth)
    ./dev python -m bench --quick                # small sizes: a few minutes
    ./dev python -m bench --only delivery,core   # some sections

Each module runs in a fresh process (`python -m bench.NAME ... --json PATH`), so one's
memory, threads and event loop never colour another's figures, and writes
`{"figures": [row, ...], "data": {...}}`, where a row is

    {"section": str, "name": str, "left": float | None, "right": float | None,
     "left_label": str, "right_label": str, "ratio": float | None, "target": str,
     "ok": bool | None, "digits": int}

The runner merges the rows into one table and writes everything to
bench/results/latest.json. The growth benchmarks (core, scheduler) keep their filled
databases in bench/.data/, so a second run reuses them instead of filling a million
cases again.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
DATA = BENCH / ".data"
MODULES = ("intake", "chain", "delivery", "core", "scheduler")
FULL_CASES = 1_000_000
QUICK_CASES = 100_000
QUICK_NAIVE_JOBS = 20_000
ROW_FIELDS = ("section", "name", "left", "right", "left_label", "right_label", "ratio",
              "target", "ok", "digits")


@dataclass
class ModuleRun:
    """How one module's process went."""

    name: str
    status: str  # "ok", "skipped" or "failed"
    seconds: float = 0.0
    note: str = ""
    output: dict[str, Any] | None = None


def command(name: str, *, quick: bool, json_path: Path, data_dir: Path) -> list[str]:
    """The command line that runs one module."""
    argv = [sys.executable, "-m", f"bench.{name}", "--json", str(json_path)]
    if name in ("core", "scheduler"):
        argv += ["--cases", str(QUICK_CASES if quick else FULL_CASES), "--keep", str(data_dir)]
        if name == "scheduler" and quick:
            argv += ["--naive-jobs", str(QUICK_NAIVE_JOBS)]
    elif quick:
        argv.append("--quick")
    return argv


def run_module(name: str, *, quick: bool, data_dir: Path, work: Path) -> ModuleRun:
    """Run one module in a fresh process (its output goes straight to the console)."""
    if not (BENCH / f"{name}.py").exists():
        return ModuleRun(name, "skipped", note=f"bench/{name}.py is not there (yet)")
    json_path = work / f"{name}.json"
    json_path.unlink(missing_ok=True)
    began = time.perf_counter()
    done = subprocess.run(command(name, quick=quick, json_path=json_path, data_dir=data_dir),
                          cwd=BENCH.parent, check=False)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        return ModuleRun(name, "failed", seconds, f"exit status {done.returncode}")
    try:
        output = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return ModuleRun(name, "failed", seconds, f"no JSON figures: {error}")
    return ModuleRun(name, "ok", seconds, output=output)


def normalise(row: dict[str, Any], module: str) -> dict[str, Any]:
    """A row with every field of the contract; the ratio computed when only the sides are
    given; a section named after its module when it has none."""
    merged: dict[str, Any] = {"section": module, "name": "?", "left": None, "right": None,
                              "left_label": "", "right_label": "", "ratio": None,
                              "target": "", "ok": None, "digits": 1}
    merged.update({key: row[key] for key in ROW_FIELDS if key in row})
    if merged["target"] in ("-", None):
        merged["target"] = ""
    left, right = merged["left"], merged["right"]
    if merged["ratio"] is None and "ratio" not in row and _number(left) and _number(right):
        merged["ratio"] = right / left if left else None
    return merged


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def merge(outputs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """All modules' rows, in the order of `outputs`, each with the contract's fields."""
    rows: list[dict[str, Any]] = []
    for module, output in outputs.items():
        rows.extend(normalise(row, module) for row in output.get("figures", []))
    return rows


def cell(value: float | None, digits: int, label: str = "") -> str:
    """A value as the table shows it, with its side's label."""
    if value is None:
        return "—"
    text = f"{value:,.{digits}f}" if _number(value) else str(value)
    return f"{text} {label}".rstrip()


def table(rows: list[dict[str, Any]], notes: list[str] | None = None) -> str:
    """One text table: section | figure | left | right | ratio | target | ✔/✘."""
    header = ("section", "figure", "left", "right", "ratio", "target", "✔/✘")
    body = [
        (
            row["section"],
            row["name"],
            cell(row["left"], row["digits"], row["left_label"]),
            cell(row["right"], row["digits"], row["right_label"]),
            "—" if row["ratio"] is None else f"{row['ratio']:.2f}×",
            row["target"] or "",
            {True: "✔", False: "✘", None: ""}[row["ok"]],
        )
        for row in rows
    ]
    widths = [max(len(str(line[i])) for line in (header, *body)) for i in range(len(header))]

    def line(values: tuple[str, ...]) -> str:
        return " | ".join(
            str(v).rjust(w) if i in (2, 3, 4) else str(v).ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    lines = [line(header), "-+-".join("-" * w for w in widths), *(line(b) for b in body)]
    return "\n".join([*lines, *(notes or [])])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help=f"small sizes ({QUICK_CASES:,} cases for growth, fewer notices)")
    parser.add_argument("--only", metavar="LIST",
                        help=f"comma-separated sections to run, of {','.join(MODULES)}")
    parser.add_argument("--data", type=Path, default=DATA, metavar="DIR",
                        help=f"kept databases of the growth benchmarks (default {DATA})")
    parser.add_argument("--json", type=Path, default=RESULTS / "latest.json", metavar="PATH",
                        help="where to write everything (default bench/results/latest.json)")
    args = parser.parse_args(argv)
    chosen = MODULES if not args.only else tuple(m.strip() for m in args.only.split(","))
    unknown = [m for m in chosen if m not in MODULES]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    args.modules = [m for m in MODULES if m in chosen]
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the chosen modules one after another, print the table, write latest.json."""
    args = parse_args(argv)
    started = datetime.now().astimezone().isoformat(timespec="seconds")
    args.data.mkdir(parents=True, exist_ok=True)
    work = args.json.parent / "modules"
    work.mkdir(parents=True, exist_ok=True)
    runs: list[ModuleRun] = []
    for name in args.modules:
        print(f"\n=== bench.{name} {'(quick)' if args.quick else ''}".rstrip(), flush=True)
        run = run_module(name, quick=args.quick, data_dir=args.data, work=work)
        if run.status != "ok":
            print(f"=== bench.{name}: {run.status} — {run.note}", flush=True)
        runs.append(run)
    outputs = {run.name: run.output for run in runs if run.output is not None}
    rows = merge(outputs)
    notes = [f"{run.name}: {run.status} — {run.note}" for run in runs if run.status != "ok"]
    print("\n" + table(rows, notes), flush=True)
    payload = {
        "started": started,
        "quick": args.quick,
        "modules": {run.name: {"status": run.status, "seconds": round(run.seconds, 1),
                               "note": run.note} for run in runs},
        "figures": rows,
        "data": {name: output.get("data", {}) for name, output in outputs.items()},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=str),
                         encoding="utf-8")
    print(f"\nwritten to {args.json}")
    return 1 if any(run.status == "failed" for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
