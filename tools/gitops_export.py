"""Write every stage's Kubernetes manifests as plain YAML under dist/<stage>/, one file per chart.

Usage: .venv/bin/python -m tools.gitops_export [dist [stage]]   (make synth [STAGE=<stage>] runs it)

The charts are built straight from config/<stage>.yaml, the same way the serving stack builds them.
Values that exist only after deployment (bucket names, the Prometheus URL, the web ACL ARN) are
`${VAR}` placeholders in Flux post-build substitution syntax; the serving stack publishes their
values in the ConfigMap models/serving-stage-values.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import cdk8s
import yaml

from config import StageConfig, load_stages
from contract.serving import PLACEHOLDERS, StageValues
from k8s_charts.stage_charts import build_stage_charts


def export_values(config: StageConfig) -> StageValues:
    """Placeholders, except the region when the stage pins it (the stack then has it literally) and
    the Docker Hub mirror when the stage has no image cache (images then stay on Docker Hub)."""
    return dataclasses.replace(
        PLACEHOLDERS,
        region=config.region or PLACEHOLDERS.region,
        docker_hub_mirror=PLACEHOLDERS.docker_hub_mirror if config.image_cache.docker_hub_secret_name else "",
    )


def stage_manifests(config: StageConfig) -> dict[str, list[dict[str, Any]]]:
    """{chart file name: manifests} of one stage, in apply order."""
    charts = build_stage_charts(cdk8s.App(), config=config, values=export_values(config))
    return {name: list(chart.to_json()) for name, chart in charts.all().items()}


def write_stage(config: StageConfig, outdir: Path) -> list[Path]:
    stage_dir = outdir / config.name
    stage_dir.mkdir(parents=True, exist_ok=True)
    for stale in stage_dir.glob("*.yaml"):
        stale.unlink()
    written = []
    for index, (name, manifests) in enumerate(stage_manifests(config).items()):
        # The numeric prefix keeps the apply order (namespace first) for tools that sort by name.
        path = stage_dir / f"{index:02d}-{name}.yaml"
        path.write_text(yaml.safe_dump_all(manifests, sort_keys=False, width=1000))
        written.append(path)
    return written


def main(outdir: Path, stage: str | None = None) -> int:
    """Every stage's manifests, or only `stage`'s; exit code 2 and the allowed names for an unknown stage."""
    stages = load_stages()
    if stage is not None and stage not in stages:
        print(f"gitops_export: no stage {stage!r}; allowed: {', '.join(stages)}", file=sys.stderr)
        return 2
    for config in stages.values():
        if stage is None or config.name == stage:
            paths = write_stage(config, outdir)
            print(f"stage {config.name}: {len(paths)} manifest files -> {outdir / config.name}/")
    return 0


if __name__ == "__main__":
    sys.exit(
        main(
            Path(sys.argv[1]) if len(sys.argv) > 1 else Path("dist"),
            sys.argv[2] if len(sys.argv) > 2 else None,
        )
    )
