# Workers started by these tests run with DEBUG off, where the development SECRET_KEY is refused (salesmgmt.startup).
PRODUCTION_LIKE_SECRET_KEY = "integration-tests-" + "k" * 40
