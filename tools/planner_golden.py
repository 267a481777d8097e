"""Rewrite tests/unit/planner/golden/plan_digest.json from the planner as it is now.

Run only when a change is meant to move the planner's figures (``python tools/planner_golden.py``);
speed work must leave the file unchanged (tests/unit/planner/test_planner_golden.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from planner.digest import CASES, case_digest

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "unit" / "planner" / "golden" / "plan_digest.json"


def main() -> None:
    digest = {name: case_digest(name) for name, *_ in CASES}
    GOLDEN.write_text(json.dumps(digest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
