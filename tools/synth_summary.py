"""Print what `cdk synth` produced per stage, fail if cdk-nag reported any finding, and say what to do next.

Usage: .venv/bin/python -m tools.synth_summary cdk.out   (make synth runs it)

The pipeline deploys its own copies of the stages (assemblies `Pipeline-dev`, ...), with the same
templates as the hand-deployable ones (a test checks this), so they get one line, not a stage each.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any


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


def top_level_templates(outdir: Path) -> dict[str, dict[str, object]]:
    """{stack name: template} of the stacks outside any stage (the pipeline and its support stacks)."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    return {
        artifact.get("displayName", name): json.loads(
            (outdir / artifact["properties"]["templateFile"]).read_text()
        )
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }


def pipeline_copies(outdir: Path) -> dict[str, str]:
    """{assembly id: stage} of the assemblies nested in another construct (`Pipeline/dev/Network`):
    the pipeline's copies of the stages."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    copies = {}
    for artifact_id, artifact in manifest["artifacts"].items():
        if artifact["type"] != "cdk:cloud-assembly":
            continue
        stage_dir = outdir / artifact["properties"]["directoryName"]
        for stack in json.loads((stage_dir / "manifest.json").read_text())["artifacts"].values():
            path = stack.get("displayName", "").split("/")
            if len(path) > 2:
                copies[artifact_id.removeprefix("assembly-")] = path[-2]
    return copies


def resources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = template.get("Resources", {})
    assert isinstance(found, dict)
    return found


def resource_line(name: str, template: dict[str, object]) -> str:
    kinds = Counter(str(resource["Type"]) for resource in resources(template).values())
    top = ", ".join(f"{kind.split('::')[-1]} {count}" for kind, count in kinds.most_common(4))
    return f"  {name:<24} {len(resources(template)):>4} resources ({top})"


def next_steps(stages: list[str], *, pipeline: bool) -> list[str]:
    """What to run after this synth: deploy the one stage synthesised, or test all of them."""
    if len(stages) == 1 and not pipeline:
        stage = stages[0]
        return [
            f"make diff STAGE={stage}      what a deploy would change (AWS credentials for its account)",
            f"make deploy STAGE={stage}    deploy it (README, 'Deploy a stage')",
            "make test                  lint, types and all tests",
        ]
    return [
        "make test                  lint, types and all tests",
        "make synth STAGE=dev       one stage only: a faster edit-synth loop",
        "make diff STAGE=dev        what a deploy would change (AWS credentials; README, 'Deploy a stage')",
    ]


def main(outdir: Path) -> int:
    templates = stage_templates(outdir)
    copies = pipeline_copies(outdir)
    stages = [stage for stage in templates if stage not in copies]
    for stage in stages:
        stacks = templates[stage]
        total = sum(len(resources(template)) for template in stacks.values())
        print(f"stage {stage}: {len(stacks)} stacks, {total} resources -> {outdir}/assembly-{stage}/")
        for name, template in sorted(stacks.items()):
            print(resource_line(name, template))
    pipeline = top_level_templates(outdir)
    if pipeline:
        deployed = ", ".join(copies.values()) or "no stage"
        print(f"pipeline: deploys {deployed} with the stage templates above -> {outdir}/")
        for name, template in pipeline.items():
            print(resource_line(name, template))
    violations = validation_violations(outdir)
    if violations:
        print(f"\ncdk-nag: {len(violations)} unacknowledged finding(s):", file=sys.stderr)
        for violation in violations:
            print(f"  {violation}", file=sys.stderr)
        print(
            "Fix each, or acknowledge it next to the code with its reason (constructs_lib.nag.acknowledge); "
            "then make synth again.",
            file=sys.stderr,
        )
        return 1
    print("cdk-nag AwsSolutions: no unacknowledged findings")
    print("\nNext:")
    for step in next_steps(stages, pipeline=bool(pipeline)):
        print(f"  {step}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "cdk.out")))
