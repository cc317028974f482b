from tests.coaching.call_data import call_day, call_deals  # noqa: F401  (fixtures)
