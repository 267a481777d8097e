"""Each cross-boundary name is spelt once, in contract/; everything else imports it.

The scan reads every non-test Python file outside contract/ and fails on a string literal (an
f-string's literal parts included, docstrings excluded) that spells one of the contract's string
constants as a whole token, e.g. ``"models"`` or ``'namespace="models"'``, but not
``"llm-inference/node-groups-revision"``, ``"docs/observability.md"`` or prose ("the models").
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import contract
from contract.functions import CLUSTER_NAME_ENV
from contract.serving import GUARDRAIL_ID_KEY, GUARDRAIL_VERSION_KEY
from contract.telemetry import VLLM_METRICS_PATH

ROOT = Path(__file__).resolve().parents[3]
SKIPPED_DIRS = {"contract", "tests", "node_modules", "cdk.out", "dist"}

TOO_GENERIC = {
    "true": "GPU_TAINT_VALUE: every boolean-ish string in the tree",
    "http": "VLLM_PORT_NAME: also a URL scheme, an Ingress rule key and other charts' port names",
    "vllm": "VLLM_APP_NAME / VLLM_SCRAPE_JOB: also the CLI, the container, the user and metric prefixes",
    "api-key": "API_KEY_SECRET_FIELD: also the ingress auth mode and the api-key chart's file name",
    "system": "SYSTEM_NODE_GROUP: a common word",
}
"""Values too common to scan for; their users are pinned by behaviour tests instead."""

ALLOWED = {
    ("k8s_charts/model_ingress.py", "models"): "the Ingress object's own name, not the namespace",
    ("k8s_charts/pre_stop_drain.py", VLLM_METRICS_PATH): "runs alone in the vLLM pod (stdlib only, "
    "mounted from a ConfigMap), so it cannot import contract/",
    ("filter_proxy/server.py", GUARDRAIL_ID_KEY): "runs from a ConfigMap holding only filter_proxy/; "
    "test_filter_proxy_reads_the_contract_guardrail_keys pins it",
    ("filter_proxy/server.py", GUARDRAIL_VERSION_KEY): "as GUARDRAIL_ID",
    ("stacks/smoke_check_stack.py", CLUSTER_NAME_ENV): "the smoke check script's own variable "
    "(tools/smoke_check/smoke_check.sh), not the functions' environment",
}
"""(file, value) -> why that file may spell the value itself."""


def contract_values() -> dict[str, str]:
    """Every public string constant of the contract package: value -> qualified name."""
    values: dict[str, str] = {}
    for info in pkgutil.iter_modules(contract.__path__):
        module = importlib.import_module(f"contract.{info.name}")
        for name, value in vars(module).items():
            if name.isupper() and isinstance(value, str) and value not in TOO_GENERIC:
                values.setdefault(value, f"contract.{info.name}.{name}")
    return values


def source_files() -> Iterator[Path]:
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if not (set(parts) & SKIPPED_DIRS or any(part.startswith(".") for part in parts)):
            yield path


def string_literals(tree: ast.AST) -> Iterator[tuple[int, str]]:
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def token(value: str) -> re.Pattern[str]:
    """The value as a whole token: not part of a longer name, path, host or RBAC group.

    A plain word (``models``, ``logging``) counts only as the whole literal or quoted inside one
    (``namespace="models"``), so prose such as "the models of a stage" is not a copy.
    """
    if re.fullmatch(r"[a-z]+", value):
        return re.compile(rf"(?:^|[\"'=]){value}(?:$|[\"'])")
    return re.compile(rf"(?<![\w/.:-]){re.escape(value)}(?![\w/.-])")


def copies() -> list[str]:
    patterns = {value: token(value) for value in contract_values()}
    found = []
    for path in source_files():
        relative = path.relative_to(ROOT).as_posix()
        for line, literal in string_literals(ast.parse(path.read_text(encoding="utf-8"))):
            for value, pattern in patterns.items():
                if (relative, value) not in ALLOWED and pattern.search(literal):
                    found.append(f"{relative}:{line} spells {value!r} ({contract_values()[value]})")
    return sorted(found)


def test_no_contract_value_is_spelt_outside_contract() -> None:
    assert copies() == []


def test_the_scan_finds_a_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard can fail: a module that re-defines the namespace or a detail-type is reported."""
    (tmp_path / "k8s_charts").mkdir()
    (tmp_path / "k8s_charts" / "copy.py").write_text(
        'NS = "models"\nQUERY = f\'up{{namespace="models"}}\'\n'
        'DETAIL = "EC2 Spot Instance Interruption Warning"\n'
        'UNRELATED = "llm-inference/node-groups-revision"\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(__name__ + ".ROOT", tmp_path)
    assert [line.split(" (")[0] for line in copies()] == [
        "k8s_charts/copy.py:1 spells 'models'",
        "k8s_charts/copy.py:2 spells 'models'",
        "k8s_charts/copy.py:3 spells 'EC2 Spot Instance Interruption Warning'",
    ]


def test_allowed_exceptions_still_exist() -> None:
    """An exception whose file no longer spells the value is stale: remove it."""
    for relative, value in ALLOWED:
        text = (ROOT / relative).read_text(encoding="utf-8")
        assert token(value).search(text), (relative, value)


def test_filter_proxy_reads_the_contract_guardrail_keys() -> None:
    """The proxy runs without contract/ (a ConfigMap of its own modules) but reads the same keys."""
    from filter_proxy.server import build

    env = {
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        GUARDRAIL_ID_KEY: "guardrail-id",
        GUARDRAIL_VERSION_KEY: "7",
    }
    proxy, _ = build(env)
    assert (proxy.guardrail._identifier, proxy.guardrail._version) == ("guardrail-id", "7")


def test_the_contract_imports_nothing_but_the_standard_library() -> None:
    """contract/ is bundled into the Lambda asset and imported by every layer: no CDK, cdk8s, boto."""
    allowed = {"__future__", "dataclasses", "typing", "contract"}
    for path in sorted((ROOT / "contract").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert roots <= allowed, f"{path.name} imports {roots - allowed}"
