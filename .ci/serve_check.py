"""Try `make serve` as a user and an operator would (called by .ci/serve-check with the server's base URL and the
stack's log file): health, the login form, a page in the user's language, hashed static files with long caching,
the API with a token, and a change whose background work the Celery worker (not the web process) runs."""

from __future__ import annotations

import re
import sys
import time
from decimal import Decimal
from pathlib import Path

import requests

base, log_path = sys.argv[1].rstrip("/"), Path(sys.argv[2])
USER, PASSWORD = "rep_sh1", "demo-pass-2026"


def check(condition: bool, what: str) -> None:
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        sys.exit(1)


health = requests.get(f"{base}/healthz", timeout=10)
body = health.json()
check(health.status_code == 200 and body["database"] == body["cache"] == body["broker"] == "ok", f"healthz {body}")

browser = requests.Session()
login = browser.get(f"{base}/accounts/login/", timeout=10)
token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
home = browser.post(
    f"{base}/accounts/login/",
    data={"username": USER, "password": PASSWORD, "csrfmiddlewaretoken": token},
    headers={"Referer": f"{base}/accounts/login/"},
    timeout=30,
)
check(home.status_code == 200 and home.url.rstrip("/") == base and "logout" in home.text.lower(), "login → home page")
check(home.headers.get("Content-Type", "").startswith("text/html"), "home page is HTML")
css = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', home.text)
check(css is not None, "static files have hashed names (DEBUG=0, manifest storage)")
static = requests.get(base + css.group(1), timeout=10)
check(
    static.status_code == 200 and "max-age=315360000" in static.headers.get("Cache-Control", ""), "static file cached"
)
check(requests.get(f"{base}/static/nonexistent.css", timeout=10).status_code == 404, "missing static file is a 404")
check("Traceback" not in requests.get(f"{base}/no/such/page/", timeout=10).text, "DEBUG is off: no traceback pages")

api = requests.Session()
got = api.post(f"{base}/api/auth/token/", json={"username": USER, "password": PASSWORD}, timeout=10)
check(got.status_code == 200, "API token")
api.headers["Authorization"] = f"Token {got.json()['token']}"
deals = api.get(f"{base}/api/opportunities/", params={"status": "open"}, timeout=30).json()["results"]
check(bool(deals), "the rep's open deals through the API")
deal = deals[0]
before = log_path.read_text(errors="replace")
changed = api.patch(
    f"{base}/api/opportunities/{deal['id']}/",
    json={"amount": str(Decimal(deal["amount"]) + 1000), "version": deal["version"], "reason": "serve check"},
    timeout=30,
)
check(changed.status_code == 200, f"deal amount changed through the API ({changed.status_code})")
DRAINED = r"worker\.\d+\s+\|.*Task salesmgmt\.drain_outbox\[\S+\] succeeded"  # a deal change's recompute
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    new = log_path.read_text(errors="replace")[len(before) :]
    if re.search(DRAINED, new):
        break
    time.sleep(1)
check(bool(re.search(DRAINED, new)), "the change's recompute was drained by the worker")
for _ in range(60):
    if requests.get(f"{base}/healthz", timeout=10).json()["outbox"]["pending"] == 0:
        break
    time.sleep(1)
check(requests.get(f"{base}/healthz", timeout=10).json()["outbox"]["pending"] == 0, "outbox drained")
check(re.search(r"beat\.\d+\s+\|.*beat: Starting", log_path.read_text(errors="replace")) is not None, "beat running")
print("make serve: every check passed")
