"""The review's fixtures: the hand-built company of `company.py`, on its frozen day."""

from tests.coaching.review.company import company, review_day

__all__ = ["company", "review_day"]
