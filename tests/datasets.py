"""Public datasets some tests read. They live beside the repository, in `../shared/datasets/` (as `make
demo-maven` expects), never inside it: a checkout without them skips those tests instead of failing."""

from pathlib import Path

import pytest

DATASETS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
MAVEN = DATASETS / "maven-crm-sales-opportunities"

needs_maven = pytest.mark.skipif(not MAVEN.is_dir(), reason=f"the Maven CRM dataset is not at {MAVEN}")
