"""Regenerate constructs_lib/addons/nvidia_device_plugin_facts.json from a k8s-device-plugin checkout.

Usage: python -m tools.nvidia_device_plugin_facts <git dir of github.com/NVIDIA/k8s-device-plugin> <tag>
Reads, at that tag: the chart's values.yaml (the config keys), cmd/config-manager (the node label),
api/config/v1/replicas.go (the smallest replica count) and internal/rm/rm.go (the MIG resource prefix).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

FACTS = Path(__file__).resolve().parents[1] / "constructs_lib" / "addons" / "nvidia_device_plugin_facts.json"


def show(repo: str, tag: str, path: str) -> str:
    # A maintainer's tool run by hand on a checkout they chose; git from PATH is intended.
    command = ["git", "--git-dir", repo, "show", f"{tag}:{path}"]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout  # noqa: S603


def facts(repo: str, tag: str) -> dict[str, object]:
    chart_values = yaml.safe_load(show(repo, tag, "deployments/helm/nvidia-device-plugin/values.yaml"))
    label = re.search(r'DefaultConfigLabel\s*=\s*"([^"]+)"', show(repo, tag, "cmd/config-manager/main.go"))
    minimum = re.search(r"if s.Replicas < (\d+)", show(repo, tag, "api/config/v1/replicas.go"))
    prefix = re.search(r'strings.ReplaceAll\("([^"]+)"\+p.String\(\)', show(repo, tag, "internal/rm/rm.go"))
    if label is None or minimum is None or prefix is None:
        raise SystemExit("a source moved; update the patterns in tools/nvidia_device_plugin_facts.py")
    return {
        "chart_version": tag.removeprefix("v"),
        "config_values_keys": sorted(chart_values["config"]),
        "config_label": label[1],
        "time_slicing_min_replicas": int(minimum[1]),
        "mig_resource_prefix": "nvidia.com/" + prefix[1],
        "source": f"https://github.com/NVIDIA/k8s-device-plugin/tree/{tag}",
    }


if __name__ == "__main__":
    FACTS.write_text(json.dumps(facts(sys.argv[1], sys.argv[2]), indent=2) + "\n")
    print(FACTS.read_text())
