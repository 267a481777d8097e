"""Print what `cdk synth` produced per stage, and fail if cdk-nag reported any finding.

Usage: python -m tools.synth_summary cdk.out
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path


def validation_violations(outdir: Path) -> list[str]:
    report_file = outdir / "validation-report.json"
    if not report_file.exists():
        return []
    report = json.loads(report_file.read_text())
    return [
        f"{plugin['pluginName']}: {violation['ruleName']} at {construct['constructPath']}"
        for plugin in report.get("pluginReports", [])
        for violation in plugin.get("violations", [])
        for construct in violation.get("violatingConstructs", [])
    ]


def stage_templates(outdir: Path) -> dict[str, dict[str, dict[str, object]]]:
    """{stage: {stack name: template}} from the nested assemblies of a cloud assembly."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    stages: dict[str, dict[str, dict[str, object]]] = {}
    for artifact_id, artifact in manifest["artifacts"].items():
        if artifact["type"] != "cdk:cloud-assembly":
            continue
        stage_dir = outdir / artifact["properties"]["directoryName"]
        stage_manifest = json.loads((stage_dir / "manifest.json").read_text())
        stages[artifact_id.removeprefix("assembly-")] = {
            stack.get("displayName", name).split("/")[-1]: json.loads(
                (stage_dir / stack["properties"]["templateFile"]).read_text()
            )
            for name, stack in stage_manifest["artifacts"].items()
            if stack["type"] == "aws:cloudformation:stack"
        }
    return stages


def main(outdir: Path) -> int:
    for stage, stacks in stage_templates(outdir).items():
        total = 0
        print(f"stage {stage}: {len(stacks)} stacks -> {outdir}/assembly-{stage}/")
        for name, template in sorted(stacks.items()):
            resources = template.get("Resources", {})
            assert isinstance(resources, dict)
            kinds = Counter(resource["Type"] for resource in resources.values())
            total += len(resources)
            top = ", ".join(f"{kind.split('::')[-1]} {count}" for kind, count in kinds.most_common(4))
            print(f"  {name:<20} {len(resources):>4} resources ({top})")
        print(f"  {'total':<20} {total:>4} resources")
    violations = validation_violations(outdir)
    if violations:
        print(f"\ncdk-nag: {len(violations)} unacknowledged finding(s):", file=sys.stderr)
        for violation in violations:
            print(f"  {violation}", file=sys.stderr)
        return 1
    print("\ncdk-nag AwsSolutions: no unacknowledged findings")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "cdk.out")))
