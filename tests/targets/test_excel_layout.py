"""`targets.excel.layout`: what the writer puts in row 1 and the row of column keys is what the reader
takes back out of them."""

from targets.excel.layout import GRID, GRID_AMOUNT, GRID_ID, MARKER, TREE, Marker, grid_keys


def as_read(row: list) -> list[str]:
    """Row 1 as the reader gets it: every cell as text."""
    return ["" if v is None else str(v) for v in row]


def test_the_marker_row_reads_back():
    for marker in (Marker(TREE, 7), Marker(TREE, 7, 12), Marker(GRID, 7, 12, "rep", "quarter")):
        assert Marker.read(as_read(marker.row())) == marker
    assert Marker(TREE, 7).row() == [MARKER, 7, TREE, "", "", ""]
    assert (Marker(TREE, 1).first_key, Marker(GRID, 1).first_key) == ("node_id", "row_key")


def test_a_file_that_is_not_an_export_has_no_marker():
    for head in ([], ["something else", "7", TREE], [MARKER, "7"], [MARKER, "seven", TREE], [MARKER, "7", "pie"]):
        assert Marker.read(head) is None


def test_grid_keys_name_each_amount_column_and_its_id_column():
    keys = grid_keys(["FY2027-Q1", "other"])
    assert keys == ["row_key", "row", "amount:FY2027-Q1", "amount:other", "total", "id:FY2027-Q1", "id:other"]
    assert [k.removeprefix(GRID_AMOUNT) for k in keys if k.startswith(GRID_AMOUNT)] == [
        k.removeprefix(GRID_ID) for k in keys if k.startswith(GRID_ID)
    ]
