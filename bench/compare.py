"""Compare the benchmarks of the working tree with those of another commit: `python -m bench.compare REV
[topic ...] [--rounds N]` (`make bench-compare BASE=REV`).

One run is not enough to tell a 10 % change on a small machine, so the two sides run in turns, N rounds
(base, here, here, base, base, here, ...: each side is first as often as second), each on a fresh
database, and the table shows each timing's median over the rounds on both sides with their ratio, in
wall-clock seconds and in this process's CPU seconds (the Python side alone, which the database's
work and other processes do not disturb).

REV is checked out in a temporary git worktree that uses this virtualenv. It measures with this
tree's harness (`bench/__init__.py`, `bench/__main__.py`) and its own `bench_<topic>.py` files, so
both sides are timed the same way, each calling its own code.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
HARNESS = ("bench/__init__.py", "bench/__main__.py")


def _worktree(rev: str, folder: Path) -> Path:
    subprocess.run(["git", "-C", str(HERE), "worktree", "add", "--detach", "-q", str(folder), rev], check=True)
    for name in HARNESS:
        shutil.copyfile(HERE / name, folder / name)
    return folder


def _run(tree: Path, topics: list[str], out: Path) -> list[dict]:
    env = {**os.environ, "BENCH_JSON": str(out)}
    done = subprocess.run([sys.executable, "-m", "bench", *topics], cwd=tree, env=env, capture_output=True, text=True)
    if not out.exists():
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"The benchmarks failed in {tree}.")
    return json.loads(out.read_text())


def _medians(rounds: list[list[dict]], key: str) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for timings in rounds:
        for t in timings:
            if t.get(key) is not None:
                values.setdefault(t["name"], []).append(t[key])
    return {name: statistics.median(v) for name, v in values.items()}


def _ratio(here: float | None, base: float | None) -> str:
    if not here or not base:
        return ""
    return f"{(here / base - 1) * 100:+.0f} %"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="the commit to compare with (e.g. main~3 or a sha)")
    parser.add_argument("topics", nargs="*", help="benchmarks to run (default: all of this tree's)")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        base = _worktree(args.rev, Path(tmp) / "base")
        try:
            results: dict[str, list[list[dict]]] = {"base": [], "here": []}
            for n in range(args.rounds):
                order = ("base", "here") if n % 4 in (0, 3) else ("here", "base")
                for side in order:
                    tree = base if side == "base" else HERE
                    print(f"round {n + 1}/{args.rounds}: {side} ...", flush=True)
                    results[side].append(_run(tree, args.topics, Path(tmp) / f"{side}-{n}.json"))
        finally:
            subprocess.run(["git", "-C", str(HERE), "worktree", "remove", "--force", str(base)], check=False)

    wall = {side: _medians(rounds, "seconds") for side, rounds in results.items()}
    cpu = {side: _medians(rounds, "cpu") for side, rounds in results.items()}
    rows = [("benchmark", "base s", "here s", "wall", "base cpu", "here cpu", "cpu")]
    for name in wall["here"]:
        b, h = wall["base"].get(name), wall["here"][name]
        bc, hc = cpu["base"].get(name), cpu["here"].get(name)
        rows.append(
            (
                name,
                "" if b is None else f"{b:.3f}",
                f"{h:.3f}",
                _ratio(h, b),
                "" if bc is None else f"{bc:.3f}",
                "" if hc is None else f"{hc:.3f}",
                _ratio(hc, bc),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"\nMedians of {args.rounds} rounds, {args.rev} (base) against the working tree (here):\n")
    for row in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
