"""Refusing an import file that is too big (issue 10): the 19.6 MB CSV of 4.9 million rows and the 1.5 million-row
XLSX that used to cost a web worker 17 s / 1.5 GB and 61 s / 0.75 GB before "more than 100,000 rows" was said.

Each file is refused through the wizard's own code: the upload step (`import_job_create`, which reads a sample and
counts the CSV's rows) and the mapping step's full read of the stored file (`read_upload` on the open file, as
`import_job_table` does). Each measurement runs in a fresh Python process (Django set up, the upload already in
memory as bytes, as the view has it): one run for the time and the peak RSS growth (ru_maxrss), one under
tracemalloc for the peak of Python allocations (tracemalloc slows Python down, so it is not timed).

Goal: the CSV is refused in well under a second and tens of MB. The XLSX is measured twice: as openpyxl's
write-only mode writes it (no declared <dimension>, so its <row> tags are counted in the compressed stream)
and with the <dimension> Excel and LibreOffice declare (refused from the sheet's first bytes).

The files are generated once into $TMPDIR/salesmgmt-bench-imports (the XLSX takes minutes to write) and kept.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from bench import Timing

CSV_ROWS = 4_900_000
XLSX_ROWS = 1_500_000
CSV_GOAL = 1.0  # seconds

CHILD = r"""
import json, os, resource, sys, time, tracemalloc
import django
django.setup()
from django.core.exceptions import ValidationError
from crm.models import Role, User
from pipeline import importing
import openpyxl, xlrd  # a web worker has them imported already

path, step, traced = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
name = os.path.basename(path)
data = open(path, "rb").read()  # the upload, in memory as the view has it
actor = User(username="bench", role=Role.MANAGER)


def work():
    if step == "upload":
        importing.import_job_create(kind="opportunities", data=data, filename=name, actor=actor)
    else:
        with open(path, "rb") as handle:  # import_job_table reads the stored file the same way
            importing.read_upload(handle, name)


before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if traced:
    tracemalloc.start()
start = time.perf_counter()
try:
    work()
    message = "NOT REFUSED"
except ValidationError as exc:
    message = " ".join(exc.messages)
seconds = time.perf_counter() - start
peak = tracemalloc.get_traced_memory()[1] if traced else 0
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = {"seconds": seconds, "rss_mb": (after - before) / 1024, "traced_mb": peak / 2**20, "message": message}
print(json.dumps(result))
"""


def _folder() -> Path:
    folder = Path(tempfile.gettempdir()) / "salesmgmt-bench-imports"
    folder.mkdir(exist_ok=True)
    return folder


def _csv(folder: Path) -> Path:
    path = folder / "deals-4.9M.csv"
    if not path.exists():
        partial = path.with_suffix(".part")
        with partial.open("wb") as out:
            out.write(b"name,amount\n")
            block = b"x,1\n" * 100_000
            for _ in range(CSV_ROWS // 100_000):
                out.write(block)
        partial.rename(path)
    return path


def _xlsx(folder: Path) -> Path:
    path = folder / "deals-1.5M.xlsx"
    if not path.exists():
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet()
        sheet.append(["name", "amount"])
        for _ in range(XLSX_ROWS):
            sheet.append(["x", 1])
        partial = path.with_suffix(".part")
        workbook.save(partial)
        partial.rename(path)
    return path


def _xlsx_with_dimension(folder: Path, source: Path) -> Path:
    """The same workbook with the <dimension> Excel writes, the sheet XML copied in a stream."""
    path = folder / "deals-1.5M-dimension.xlsx"
    if not path.exists():
        partial = path.with_suffix(".part")
        dimension = f'<dimension ref="A1:B{XLSX_ROWS + 1}"/><sheetViews'.encode()
        with zipfile.ZipFile(source) as zin, zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zout:
            for item in zin.infolist():
                with zin.open(item) as src, zout.open(item.filename, "w", force_zip64=True) as dst:
                    first = True
                    while chunk := src.read(1 << 20):
                        if first and item.filename.startswith("xl/worksheets/"):
                            chunk = chunk.replace(b"<sheetViews", dimension, 1)
                        first = False
                        dst.write(chunk)
        partial.rename(path)
    return path


def _measure(path: Path, step: str, traced: bool) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "salesmgmt.settings")}
    root = Path(__file__).resolve().parent.parent
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH", "")]))
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), step, "1" if traced else "0"],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def run() -> list[Timing]:
    folder = _folder()
    print("  generating the files (once) ...", flush=True)
    csv_path = _csv(folder)
    xlsx_path = _xlsx(folder)
    dimension_path = _xlsx_with_dimension(folder, xlsx_path)
    files = [
        ("CSV 4.9M rows", csv_path, CSV_GOAL),
        ("XLSX 1.5M rows, no <dimension>", xlsx_path, None),
        ("XLSX 1.5M rows, <dimension>", dimension_path, None),
    ]
    timings = []
    for label, path, goal in files:
        size = path.stat().st_size / 2**20
        for step in ("upload", "mapping"):
            timed = _measure(path, step, traced=False)
            traced = _measure(path, step, traced=True)
            assert "more than" in timed["message"], timed["message"]
            timing = Timing(
                name=f"refuse {label} ({size:.1f} MB) at {step}",
                seconds=timed["seconds"],
                goal=goal,
                note=(
                    f"peak RSS +{timed['rss_mb']:.0f} MB, traced peak {traced['traced_mb']:.1f} MB: {timed['message']}"
                ),
            )
            timing.extra.update(rss_mb=timed["rss_mb"], traced_mb=traced["traced_mb"])
            timings.append(timing)
    return timings
