"""Write the facts file of one vLLM release from its published wheel (facts, not code).

Usage:
    pip download --no-deps vllm==0.33.0 -d /tmp/vllm
    python -m tools.vllm_facts /tmp/vllm/vllm-0.33.0-*.whl config/vllm_facts

The wheel is read as text and parsed with `ast` (vLLM itself is never imported: it needs torch and
a GPU). What is extracted, and from where in the wheel:

- serve_flags: every `--flag` the `vllm serve` parser registers (vllm/engine/arg_utils.py,
  vllm/entrypoints/common/cli_args.py), plus `--no-<flag>` where argparse's BooleanOptionalAction
  applies (explicitly, or because the config dataclass field behind the flag is a bool).
- env_vars: the keys of `environment_variables` in vllm/envs.py.
- env_read_by_code: other variables vLLM code reads with os.environ / os.getenv (e.g. DO_NOT_TRACK).
- speculative_methods / speculative_config_keys: the `SpeculativeMethod` Literal and the fields of
  `SpeculativeConfig` (vllm/config/speculative.py).
- quantization_methods: the `QuantizationMethods` Literal
  (vllm/model_executor/layers/quantization/__init__.py).
- load_formats: the loader registry keys (vllm/model_executor/model_loader/__init__.py).
- runai_streamer_env: the Run:ai streamer variables vLLM's loader sets
  (vllm/model_executor/model_loader/runai_streamer_loader.py).
- metrics: every Prometheus metric named `vllm:*` that a Counter/Gauge/Histogram constructor
  creates, spelled as exposed (counters end in `_total`), plus the default metrics of
  prometheus-fastapi-instrumentator when vLLM calls `Instrumentator(...).add()` with no argument.
- base_requirements: whether the OpenTelemetry SDK and OTLP exporter are unconditional
  requirements (they decide whether `--otlp-traces-endpoint` works in the plain image).
- http_routes: "<METHOD> <path>" of every FastAPI route declared with a decorator
  (`@router.post("/v1/completions", ...)`) under vllm/entrypoints/. Whether a route is attached depends
  on the model's tasks (e.g. the OpenAI completion and chat routers only for "generate" models,
  vllm/entrypoints/launchers/api_server/routers.py); the smoke check posts to /v1/completions.
- default_block_size: `CacheConfig.DEFAULT_BLOCK_SIZE` (vllm/config/cache.py), the KV block size in
  tokens without `--block-size` (the planner's prefix-cache model hits at this granularity).
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

SERVE_PARSER_FILES = ("vllm/engine/arg_utils.py", "vllm/entrypoints/common/cli_args.py")
FRONTEND_CLASSES = ("BaseFrontendArgs", "FrontendArgs")
METRIC_KINDS = ("counter", "gauge", "histogram")
# Default metrics of prometheus-fastapi-instrumentator's `Instrumentator().add()` (metrics.default()),
# https://github.com/trallnag/prometheus-fastapi-instrumentator/blob/master/src/prometheus_fastapi_instrumentator/metrics.py
INSTRUMENTATOR_DEFAULTS = {
    "counters": ["http_requests_total"],
    "histograms": ["http_request_duration_highr_seconds", "http_request_duration_seconds"],
    "summaries": ["http_request_size_bytes", "http_response_size_bytes"],
}
OTEL_REQUIREMENTS = ("opentelemetry-sdk", "opentelemetry-exporter-otlp")


class Wheel:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip = zipfile.ZipFile(path)
        self.names = set(self.zip.namelist())

    def text(self, name: str) -> str:
        return self.zip.read(name).decode()

    def tree(self, name: str) -> ast.Module:
        return ast.parse(self.text(name), filename=name)

    def sources(self, prefix: str = "vllm/") -> list[str]:
        return sorted(n for n in self.names if n.startswith(prefix) and n.endswith(".py"))


def _literal_strings(node: ast.expr, aliases: dict[str, list[str]]) -> list[str]:
    """Strings of a `Literal[...]` expression, following names of other Literal aliases."""
    if isinstance(node, ast.Subscript):
        return _literal_strings(node.slice, aliases)
    if isinstance(node, ast.Tuple):
        return [value for element in node.elts for value in _literal_strings(element, aliases)]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Name):
        return aliases.get(node.id, [])
    return []


def literal_aliases(tree: ast.Module) -> dict[str, list[str]]:
    aliases: dict[str, list[str]] = {}
    for stmt in tree.body:
        if (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and isinstance(stmt.value, ast.Subscript)
            and ast.unparse(stmt.value.value) == "Literal"
        ):
            aliases[stmt.targets[0].id] = _literal_strings(stmt.value, aliases)
    return aliases


def class_fields(wheel: Wheel, prefix: str) -> dict[str, dict[str, str]]:
    """{class name: {field: annotation source}} of every class under a package prefix."""
    classes: dict[str, dict[str, str]] = {}
    for name in wheel.sources(prefix):
        for node in ast.walk(wheel.tree(name)):
            if isinstance(node, ast.ClassDef):
                fields = classes.setdefault(node.name, {})
                for stmt in node.body:
                    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                        fields[stmt.target.id] = ast.unparse(stmt.annotation)
    return classes


def _is_bool_flag(annotation: str) -> bool:
    # get_kwargs: bool (not bool | str) becomes BooleanOptionalAction, i.e. --x and --no-x.
    parts = {part.strip() for part in re.split(r"[|\[\],]", annotation) if part.strip()}
    return "bool" in parts and "str" not in parts


def serve_flags(wheel: Wheel) -> list[str]:
    classes = class_fields(wheel, "vllm/config/")
    classes.update(class_fields(wheel, "vllm/entrypoints/common/"))
    flags: set[str] = set()
    for name in SERVE_PARSER_FILES:
        tree = wheel.tree(name)
        kwargs_class: dict[str, str] = {}
        for node in ast.walk(tree):
            # model_kwargs = get_kwargs(ModelConfig)
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call)
                and ast.unparse(node.value.func) == "get_kwargs"
                and node.value.args
                and isinstance(node.value.args[0], ast.Name)
            ):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        kwargs_class[target.id] = node.value.args[0].id
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and ast.unparse(node.func).endswith("add_argument")):
                continue
            names = [
                arg.value
                for arg in node.args
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("--")
            ]
            if not names:
                continue
            flags.update(names)
            if _negatable(node, kwargs_class, classes):
                flags.update(f"--no-{flag.removeprefix('--')}" for flag in names)
    for class_name in FRONTEND_CLASSES:
        for field, annotation in classes[class_name].items():
            flag = f"--{field.replace('_', '-')}"
            flags.add(flag)
            if _is_bool_flag(annotation):
                flags.add(f"--no-{field.replace('_', '-')}")
    return sorted(flags)


def _negatable(call: ast.Call, kwargs_class: dict[str, str], classes: dict[str, dict[str, str]]) -> bool:
    source = ast.unparse(call)
    if "BooleanOptionalAction" in source:
        return True
    for node in ast.walk(call):
        # **cache_kwargs["enable_prefix_caching"]
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id in kwargs_class
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            annotation = classes.get(kwargs_class[node.value.id], {}).get(node.slice.value, "")
            return _is_bool_flag(annotation)
    return False


def env_vars(wheel: Wheel) -> list[str]:
    for node in ast.walk(wheel.tree("vllm/envs.py")):
        target: ast.expr | None = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        if (
            isinstance(target, ast.Name)
            and target.id == "environment_variables"
            and isinstance(node, ast.Assign | ast.AnnAssign)
            and isinstance(node.value, ast.Dict)
        ):
            return sorted(
                key.value
                for key in node.value.keys
                if isinstance(key, ast.Constant) and isinstance(key.value, str)
            )
    raise SystemExit("environment_variables not found in vllm/envs.py")


def env_read_by_code(wheel: Wheel) -> list[str]:
    """Variables read with os.environ / os.getenv anywhere in vLLM (outside envs.py too)."""
    pattern = re.compile(r"""(?:os\.environ\.get|os\.getenv|os\.environ\[)\(?\s*["']([A-Z][A-Z0-9_]+)["']""")
    return sorted({name for source in wheel.sources() for name in pattern.findall(wheel.text(source))})


def speculative(wheel: Wheel) -> tuple[list[str], list[str]]:
    tree = wheel.tree("vllm/config/speculative.py")
    methods = literal_aliases(tree)["SpeculativeMethod"]
    keys = class_fields(wheel, "vllm/config/speculative.py")["SpeculativeConfig"]
    return sorted(set(methods)), sorted(keys)


def quantization_methods(wheel: Wheel) -> list[str]:
    tree = wheel.tree("vllm/model_executor/layers/quantization/__init__.py")
    return sorted(set(literal_aliases(tree)["QuantizationMethods"]))


def load_formats(wheel: Wheel) -> list[str]:
    tree = wheel.tree("vllm/model_executor/model_loader/__init__.py")
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict) and any(
            isinstance(key, ast.Constant) and key.value == "runai_streamer" for key in node.keys
        ):
            return sorted(str(key.value) for key in node.keys if isinstance(key, ast.Constant))
    raise SystemExit("loader registry not found")


def default_block_size(wheel: Wheel) -> int:
    """KV cache block size in tokens when --block-size is not given: CacheConfig.DEFAULT_BLOCK_SIZE
    (vllm/config/cache.py), which the config's validator applies to a block_size of None."""
    for node in ast.walk(wheel.tree("vllm/config/cache.py")):
        if isinstance(node, ast.ClassDef) and node.name == "CacheConfig":
            for stmt in node.body:
                if (
                    isinstance(stmt, ast.AnnAssign)
                    and isinstance(stmt.target, ast.Name)
                    and stmt.target.id == "DEFAULT_BLOCK_SIZE"
                    and stmt.value is not None
                ):
                    return int(ast.literal_eval(stmt.value))
    raise SystemExit("vllm/config/cache.py: CacheConfig.DEFAULT_BLOCK_SIZE not found")


def runai_streamer_env(wheel: Wheel) -> list[str]:
    text = wheel.text("vllm/model_executor/model_loader/runai_streamer_loader.py")
    return sorted(set(re.findall(r"\b(RUNAI_STREAMER_[A-Z_]+)\b", text)))


def metrics(wheel: Wheel) -> dict[str, list[str]]:
    found: dict[str, set[str]] = {kind: set() for kind in METRIC_KINDS}
    for name in wheel.sources():
        text = wheel.text(name)
        if "vllm:" not in text:
            continue
        for node in ast.walk(ast.parse(text, filename=name)):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.List):
                # counter_specs = [("vllm:spec_decode_num_drafts", "doc"), ...] fed to a constructor
                target = ast.unparse(node.targets[0]).lower()
                spec_kind = next((k for k in METRIC_KINDS if k in target), None)
                for element in node.value.elts:
                    first = element.elts[0] if isinstance(element, ast.Tuple) and element.elts else None
                    if spec_kind and isinstance(first, ast.Constant) and str(first.value).startswith("vllm:"):
                        found[spec_kind].add(str(first.value))
            if not isinstance(node, ast.Call):
                continue
            func = ast.unparse(node.func).rsplit(".", 1)[-1].lower()
            kind = next((k for k in METRIC_KINDS if k in func), None)
            if kind is None:
                continue
            candidates = [kw.value for kw in node.keywords if kw.arg == "name"] + node.args[:1]
            for value in candidates:
                if isinstance(value, ast.Constant) and str(value.value).startswith("vllm:"):
                    found[kind].add(str(value.value))
    counters = {name.removesuffix("_total") + "_total" for name in found["counter"]}
    result = {
        "counters": sorted(counters),
        "gauges": sorted(found["gauge"]),
        "histograms": sorted(found["histogram"]),
    }
    instrumentator = wheel.text("vllm/entrypoints/serve/instrumentator/metrics.py")
    if re.search(r"\)\.add\(\)\.instrument\(", instrumentator):
        result["counters"] = sorted(result["counters"] + INSTRUMENTATOR_DEFAULTS["counters"])
        result["histograms"] = sorted(result["histograms"] + INSTRUMENTATOR_DEFAULTS["histograms"])
    return result


HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def http_routes(wheel: Wheel) -> list[str]:
    routes: set[str] = set()
    for name in wheel.sources("vllm/entrypoints/"):
        for node in ast.walk(wheel.tree(name)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and isinstance(decorator.func, ast.Attribute)
                    and decorator.func.attr in HTTP_METHODS
                    and decorator.args
                    and isinstance(decorator.args[0], ast.Constant)
                    and isinstance(decorator.args[0].value, str)
                    and decorator.args[0].value.startswith("/")
                ):
                    routes.add(f"{decorator.func.attr.upper()} {decorator.args[0].value}")
    return sorted(routes)


def base_requirements(wheel: Wheel, version: str) -> dict[str, bool]:
    metadata = wheel.text(f"vllm-{version}.dist-info/METADATA")
    unconditional = {
        re.split(r"[<>=!~;\[ ]", line.removeprefix("Requires-Dist:").strip(), maxsplit=1)[0].lower()
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    }
    return {requirement: requirement in unconditional for requirement in OTEL_REQUIREMENTS}


def facts(wheel_path: Path) -> dict[str, Any]:
    wheel = Wheel(wheel_path)
    match = re.match(r"vllm-([^-]+)-", wheel_path.name)
    if not match:
        raise SystemExit(f"{wheel_path.name} is not a vllm wheel name")
    version = match.group(1)
    methods, spec_keys = speculative(wheel)
    return {
        "vllm_version": version,
        "image_tag": f"v{version}",
        "source": {
            "wheel": wheel_path.name,
            "sha256": hashlib.sha256(wheel_path.read_bytes()).hexdigest(),
            "generator": "tools/vllm_facts.py",
        },
        "serve_flags": serve_flags(wheel),
        "env_vars": env_vars(wheel),
        "env_read_by_code": env_read_by_code(wheel),
        "speculative_methods": methods,
        "speculative_config_keys": spec_keys,
        "quantization_methods": quantization_methods(wheel),
        "load_formats": load_formats(wheel),
        "runai_streamer_env": runai_streamer_env(wheel),
        "metrics": metrics(wheel),
        "base_requirements": base_requirements(wheel, version),
        "default_block_size": default_block_size(wheel),
        "http_routes": http_routes(wheel),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    wheel_path, out_dir = Path(argv[0]), Path(argv[1])
    data = facts(wheel_path)
    out = out_dir / f"{data['image_tag']}.json"
    out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}: {len(data['serve_flags'])} flags, {len(data['env_vars'])} env vars")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
