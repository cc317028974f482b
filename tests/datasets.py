"""Data some tests read. Public datasets live beside the repository, in `../shared/datasets/` (as `make
demo-maven` expects), never inside it: a checkout without them skips those tests instead of failing.
The few small files of the import and tabular tests (Excel and CSV exports) are kept in `tests/data/`."""

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"

DATASETS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
MAVEN = DATASETS / "maven-crm-sales-opportunities"

needs_maven = pytest.mark.skipif(not MAVEN.is_dir(), reason=f"the Maven CRM dataset is not at {MAVEN}")

SUPERSTORE = DATASETS / "tableau-sample-superstore" / "Sample-Superstore.csv"

needs_superstore = pytest.mark.skipif(
    not SUPERSTORE.is_file(), reason=f"the Tableau Superstore sample is not at {SUPERSTORE}"
)
