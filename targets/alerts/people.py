"""Who is told about a target or a deal besides its owner."""

from __future__ import annotations


def manager_of(owner_id: int, region_manager_id: int | None, parent_manager_id: int | None) -> int | None:
    """The owner's manager: the manager of the owner's region, or of its parent when the owner manages it."""
    if region_manager_id and region_manager_id != owner_id:
        return region_manager_id
    if parent_manager_id and parent_manager_id != owner_id:
        return parent_manager_id
    return None
