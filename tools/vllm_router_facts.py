"""Write the facts file of one vllm-router release from its published wheel (facts, not code).

Usage:
    pip download --no-deps vllm-router==0.1.17 -d /tmp/vllm-router
    python -m tools.vllm_router_facts /tmp/vllm-router/vllm_router-0.1.17-*.whl config/router_facts

What is extracted, and from where in the wheel:

- wheel_tags: the `Tag:` lines of the wheel's WHEEL file (which machines can run the binary).
- launcher_flags: every `--flag` the `vllm-router` launcher registers (vllm_router/router_args.py,
  without the `router-` prefix other entry points add), read with `ast`.
- policies: the `choices` of `--policy`.
- cache_aware_defaults: the `RouterArgs` defaults of the cache_aware policy's knobs
  (cache_threshold, balance_abs_threshold, balance_rel_threshold, max_tree_size), which the planner's
  prefix_affinity routing model uses.

Metric names are not extracted: the Rust extension stores them as concatenated string constants that
cannot be split reliably. The end-to-end test (tests/router_e2e) reads the series docs/serving.md
names from a running router instead. tests/unit/tools/test_vllm_router_facts.py checks this file
against the installed package.
"""

from __future__ import annotations

import ast
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

ARGS_FILE = "vllm_router/router_args.py"


def _flag_name(node: ast.expr) -> str | None:
    """`"--host"` or `f"--{prefix}policy"` as `--host` / `--policy`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("--"):
        return node.value
    if isinstance(node, ast.JoinedStr):
        text = "".join(str(part.value) for part in node.values if isinstance(part, ast.Constant))
        if text.startswith("--"):
            return text
    return None


def launcher_flags(router_args_source: str) -> tuple[list[str], list[str]]:
    """(every flag, the --policy choices) of the launcher's argparse declarations."""
    flags: set[str] = set()
    policies: list[str] = []
    for node in ast.walk(ast.parse(router_args_source)):
        if not (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument"):
            continue
        names = [name for name in (_flag_name(arg) for arg in node.args) if name]
        flags.update(names)
        if "--policy" in names:
            for keyword in node.keywords:
                if keyword.arg == "choices" and isinstance(keyword.value, ast.List | ast.Tuple):
                    policies = [str(ast.literal_eval(element)) for element in keyword.value.elts]
    return sorted(flags), policies


CACHE_AWARE_KNOBS = ("cache_threshold", "balance_abs_threshold", "balance_rel_threshold", "max_tree_size")


def cache_aware_defaults(router_args_source: str) -> dict[str, int | float]:
    """The `RouterArgs` dataclass defaults of the cache_aware knobs (`2**25` evaluated)."""
    found: dict[str, int | float] = {}
    for node in ast.walk(ast.parse(router_args_source)):
        if isinstance(node, ast.ClassDef) and node.name == "RouterArgs":
            for stmt in node.body:
                if (
                    isinstance(stmt, ast.AnnAssign)
                    and isinstance(stmt.target, ast.Name)
                    and stmt.target.id in CACHE_AWARE_KNOBS
                    and stmt.value is not None
                ):
                    found[stmt.target.id] = _number(stmt.value)
    return {name: found[name] for name in CACHE_AWARE_KNOBS if name in found}


def _number(node: ast.expr) -> int | float:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        power: int | float = _number(node.left) ** _number(node.right)
        return power
    value = ast.literal_eval(node)
    if not isinstance(value, int | float):
        raise SystemExit(f"RouterArgs default {ast.unparse(node)} is not a number")
    return value


def facts(*, version: str, wheel_file: str, router_args_source: str) -> dict[str, Any]:
    flags, policies = launcher_flags(router_args_source)
    tags = sorted(
        line.split(":", 1)[1].strip() for line in wheel_file.splitlines() if line.startswith("Tag:")
    )
    return {
        "version": version,
        "wheel_tags": tags,
        "launcher_flags": flags,
        "policies": policies,
        "cache_aware_defaults": cache_aware_defaults(router_args_source),
    }


def facts_from_wheel(wheel: Path) -> dict[str, Any]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = next(name.split("/", 1)[0] for name in names if name.endswith(".dist-info/WHEEL"))
        version = dist_info.removesuffix(".dist-info").split("-", 1)[1]
        return facts(
            version=version,
            wheel_file=archive.read(f"{dist_info}/WHEEL").decode(),
            router_args_source=archive.read(ARGS_FILE).decode(),
        )


def write(result: dict[str, Any], directory: Path) -> Path:
    path = directory / f"vllm-router-{result['version']}.json"
    path.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return path


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    print(write(facts_from_wheel(Path(argv[0])), Path(argv[1])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
