"""The wiring's fixtures: the review's hand-built company (tests/coaching/review/company.py), on its frozen day."""

from tests.coaching.review.company import company, review_day

__all__ = ["company", "review_day"]
