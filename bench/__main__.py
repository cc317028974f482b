"""Run the benchmarks: `python -m bench [topic ...]` (e.g. `python -m bench split`).

Uses PostgreSQL at $DATABASE_URL (default postgres://postgres@127.0.0.1:5432/salesmgmt_bench): a
throwaway database, dropped and created afresh on every run so each run measures the same thing.
Exits 1 when a timing misses its goal. With BENCH_JSON=path the timings are also written there as JSON
(`python -m bench.compare` reads them).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import pkgutil
import sys
from pathlib import Path

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/salesmgmt_bench"


def ensure_database(url: str) -> None:
    import dj_database_url
    import psycopg
    from psycopg import sql

    config = dj_database_url.parse(url)
    if "postgresql" not in config["ENGINE"]:
        raise SystemExit(f"The benchmarks run on PostgreSQL; DATABASE_URL is {url!r}.")
    params = {
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **{k: v for k, v in params.items() if v}) as conn:
        name = sql.Identifier(config["NAME"])
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
        # Write out what the last run left dirty now, not during this run's timings (a run after a run was
        # up to a third slower while PostgreSQL wrote the previous run's pages).
        conn.execute("CHECKPOINT")
        print(f"Created a fresh database {config['NAME']}.")


def discover() -> list[str]:
    here = Path(__file__).parent
    return sorted(
        m.name.removeprefix("bench_") for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_")
    )


def print_table(timings) -> None:
    rows = [("benchmark", "time", "goal", "queries", "", "note")]
    for t in timings:
        status = {True: "ok", False: "MISSED", None: ""}[t.met]
        rows.append((t.name, t.value_text, t.goal_text, str(t.queries), status, t.note))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print(
            "  ".join(
                cell.ljust(w) if i in (0, 5) else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str]) -> int:
    url = os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "salesmgmt.settings")
    # The load benchmark's gunicorn and worker run with DEBUG off, which refuses the development key; this run's own
    # random key is shared with them (the sessions made here are signed with it).
    if not os.environ.get("SECRET_KEY"):
        import secrets

        os.environ["SECRET_KEY"] = secrets.token_urlsafe(50)
    ensure_database(url)

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    topics = argv or discover()
    unknown = sorted(set(topics) - set(discover()))
    if unknown:
        print(f"Unknown benchmarks: {', '.join(unknown)}. Known: {', '.join(discover())}.", file=sys.stderr)
        return 2
    timings = []
    for topic in topics:
        module = importlib.import_module(f"bench.bench_{topic}")
        print(f"Running bench_{topic} ...", flush=True)
        timings.extend(module.run())
    print()
    print_table(timings)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{os.cpu_count()} CPUs, load average {load} (timings on a busy machine are slower).")
    if os.environ.get("BENCH_JSON"):
        Path(os.environ["BENCH_JSON"]).write_text(json.dumps([dataclasses.asdict(t) for t in timings], indent=1))
    return 1 if any(t.met is False for t in timings) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
