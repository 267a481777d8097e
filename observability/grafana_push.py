"""Upload a stage's dashboard to Grafana (Amazon Managed Grafana or any Grafana) over its HTTP API.

    GRAFANA_TOKEN=<service account token> python -m observability.grafana_push <stage> https://<workspace>.grafana-workspace.<region>.amazonaws.com

``POST /api/dashboards/db`` with ``overwrite``: the dashboard's ``uid`` (``llm-inference-<stage>``)
identifies it, so a re-run replaces the previous version instead of importing a copy. Run it from
the pipeline or by hand after a change to observability/dashboard.py; nothing is imported by hand.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from typing import Any

from config import load_stages
from observability.dashboard import grafana_dashboard

API_PATH = "/api/dashboards/db"


def push(dashboard: dict[str, Any], *, grafana_url: str, token: str, message: str) -> dict[str, Any]:
    if not grafana_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise ValueError(f"{grafana_url!r}: use https:// (plain http only for a local Grafana)")
    body = json.dumps({"dashboard": {**dashboard, "id": None}, "overwrite": True, "message": message})
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        grafana_url.rstrip("/") + API_PATH,
        data=body.encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        result: dict[str, Any] = json.loads(response.read())
    return result


def main(argv: list[str]) -> None:
    if len(argv) != 2 or "GRAFANA_TOKEN" not in os.environ:
        raise SystemExit(
            "usage: GRAFANA_TOKEN=<token> python -m observability.grafana_push <stage> <grafana url>"
        )
    stage, url = argv
    result = push(
        grafana_dashboard(load_stages()[stage]),
        grafana_url=url,
        token=os.environ["GRAFANA_TOKEN"],
        message=f"observability/dashboard.py for stage {stage}",
    )
    print(f"{result.get('status')}: {url.rstrip('/')}{result.get('url', '')} version {result.get('version')}")


if __name__ == "__main__":
    main(sys.argv[1:])
