"""Pipelines through the API: read-only, with their stages in order."""

from tests.conftest import results


def test_pipelines_come_with_their_stages_in_order(org, api):
    pipeline = results(api(org.rep).get("/api/pipelines/"))[0]
    assert pipeline["is_default"] is True
    assert [s["probability"] for s in pipeline["stages"]] == [10, 30, 60, 90, 100, 0]
    assert pipeline["stages"][1]["evidence_required"] == "Decision maker met"
    assert api(org.admin).post("/api/pipelines/", {"name": "x"}, format="json").status_code == 405
