"""Run checkov (from its own environment, .venv-checkov) on synthesised templates and GitOps
manifests, and hold every failed check against tests/compliance/checkov_acknowledged.yaml.

Usage: python -m tools.checkov_scan <cdk.out> <dist>   (prints passed/failed/acknowledged per framework)

checkov runs with --skip-download, so it makes no network call (no guidelines, no platform).
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
ACKNOWLEDGED = ROOT / "tests" / "compliance" / "checkov_acknowledged.yaml"
FRAMEWORKS = ("cloudformation", "kubernetes")


@dataclass(frozen=True)
class Acknowledgement:
    check: str
    resources: tuple[str, ...]  # fnmatch patterns on checkov's resource id
    reason: str

    def covers(self, check: str, resource: str) -> bool:
        return check == self.check and any(
            fnmatch.fnmatchcase(resource, pattern) for pattern in self.resources
        )


@dataclass
class Figures:
    passed: int = 0
    failed: int = 0
    acknowledged: int = 0
    unacknowledged: list[str] = field(default_factory=list)


def load_acknowledgements(path: Path = ACKNOWLEDGED) -> list[Acknowledgement]:
    entries = yaml.safe_load(path.read_text())
    return [
        Acknowledgement(check=entry["check"], resources=tuple(entry["resources"]), reason=entry["reason"])
        for entry in entries
    ]


def scan_files(cdk_out: Path, dist: Path) -> list[Path]:
    return sorted(cdk_out.glob("**/*.template.json")) + sorted(dist.glob("*/*.yaml"))


def run_checkov(files: list[Path]) -> list[dict[str, Any]]:
    if not CHECKOV.exists():
        raise SystemExit(f"{CHECKOV} is missing: run `make install` (it creates .venv-checkov)")
    args = [str(CHECKOV), "--quiet", "--compact", "--skip-download", "-o", "json"]
    args += ["--framework", *FRAMEWORKS]
    for path in files:
        args += ["-f", str(path)]
    result = subprocess.run(args, capture_output=True, text=True, check=False)  # noqa: S603 - fixed binary
    if not result.stdout.strip():
        raise SystemExit(f"checkov produced no report (exit {result.returncode}): {result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    return report if isinstance(report, list) else [report]


def assess(
    reports: list[dict[str, Any]], acknowledgements: list[Acknowledgement]
) -> tuple[dict[str, Figures], set[Acknowledgement]]:
    """Figures per framework, and the acknowledgements that matched at least one failure."""
    figures: dict[str, Figures] = {}
    used: set[Acknowledgement] = set()
    for report in reports:
        framework = report["check_type"]
        counts = figures.setdefault(framework, Figures())
        counts.passed += report["summary"]["passed"]  # --compact leaves passed checks out of results
        for failure in report["results"]["failed_checks"]:
            counts.failed += 1
            matches = [
                ack for ack in acknowledgements if ack.covers(failure["check_id"], failure["resource"])
            ]
            if matches:
                counts.acknowledged += 1
                used.update(matches)
            else:
                where = f"{failure['resource']} ({failure['file_path']})"
                counts.unacknowledged.append(f"{failure['check_id']} {where}: {failure['check_name']}")
    return figures, used


def main() -> None:
    cdk_out, dist = (Path(arg) for arg in sys.argv[1:3])
    figures, _ = assess(run_checkov(scan_files(cdk_out, dist)), load_acknowledgements())
    for framework, counts in figures.items():
        print(
            f"{framework}: passed {counts.passed}, failed {counts.failed}, acknowledged {counts.acknowledged}"
        )
        for line in counts.unacknowledged:
            print(f"  NOT ACKNOWLEDGED: {line}")


if __name__ == "__main__":
    main()
