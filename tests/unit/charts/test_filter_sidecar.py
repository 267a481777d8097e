"""The filter sidecar in a model pod: on only where the model enables filtering, takes the
Service's traffic, forwards to vLLM on loopback, runs the proxy code shipped in a ConfigMap."""

from __future__ import annotations

import ast
import sys
from typing import Any

import pytest

from contract.serving import guardrail_config_map_name
from k8s_charts.filter_sidecar import FILTER_PORT, MODULES, PACKAGE_DIR
from k8s_charts.model_endpoint import ModelEndpointChart
from k8s_charts.shutdown import shutdown_timing
from k8s_charts.vllm_args import VLLM_PORT
from tests.templates import chart_manifests, of_kind
from tests.unit.charts.helpers import charts_for, stage_config, stage_data
from tests.variants import with_alb_routing

# What the vllm/vllm-openai image provides besides the standard library (docs/serving.md).
IMAGE_PACKAGES = {"aiohttp", "prometheus_client", "botocore", "filter_proxy"}


@pytest.fixture(scope="module")
def filtered() -> ModelEndpointChart:
    return charts_for(stage_config(stage_data("prod"), "prod")).endpoints["llama-3-1-8b-v1"]


@pytest.fixture(scope="module")
def filtered_behind_alb() -> ModelEndpointChart:
    """prod's filtered model with the ALB routing to the pods itself (host), so the pods check the key."""
    return charts_for(stage_config(with_alb_routing(stage_data("prod")), "prod")).endpoints["llama-3-1-8b-v1"]


@pytest.fixture(scope="module")
def unfiltered() -> ModelEndpointChart:
    return charts_for(stage_config(stage_data())).endpoints["llama-3-1-8b-v1"]


def containers(chart: ModelEndpointChart) -> dict[str, dict[str, Any]]:
    spec = of_kind(chart, "Deployment")["spec"]["template"]["spec"]
    return {container["name"]: container for container in spec["containers"]}


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


def test_only_a_model_with_filtering_gets_the_sidecar(
    filtered: ModelEndpointChart, unfiltered: ModelEndpointChart
) -> None:
    assert list(containers(filtered)) == ["vllm", "guardrail-filter"]
    assert list(containers(unfiltered)) == ["vllm"]
    assert of_kind(unfiltered, "Service")["spec"]["ports"][0]["targetPort"] == "http"


def test_the_service_targets_the_proxy_which_forwards_to_vllm_on_loopback(
    filtered: ModelEndpointChart,
) -> None:
    (port,) = of_kind(filtered, "Service")["spec"]["ports"]
    # The ALB's target groups and a router both resolve the Service's target port: all traffic filtered.
    assert port["targetPort"] == "filter"
    sidecar = containers(filtered)["guardrail-filter"]
    assert sidecar["ports"] == [{"name": "filter", "containerPort": FILTER_PORT, "protocol": "TCP"}]
    assert env(sidecar)["UPSTREAM_URL"] == f"http://127.0.0.1:{VLLM_PORT}"
    assert env(sidecar)["FILTER_PORT"] == str(FILTER_PORT)


def test_the_sidecar_reads_its_guardrail_from_the_stack_published_config_map(
    filtered: ModelEndpointChart,
) -> None:
    values = env(containers(filtered)["guardrail-filter"])
    for key in ("GUARDRAIL_ID", "GUARDRAIL_VERSION"):
        assert values[key] == {
            "configMapKeyRef": {"name": guardrail_config_map_name("llama-3-1-8b"), "key": key}
        }
    assert values["ON_ERROR"] == "block"
    assert values["CHECK_OUTPUT"] == "true"


def test_the_sidecar_checks_the_same_api_key_as_vllm_before_paying_for_a_guardrail_call(
    filtered_behind_alb: ModelEndpointChart, filtered: ModelEndpointChart
) -> None:
    pods = containers(filtered_behind_alb)
    key = env(pods["vllm"])["VLLM_API_KEY"]
    assert "secretKeyRef" in key  # a reference, never the value
    assert env(pods["guardrail-filter"])["API_KEY"] == key
    # Shipped prod routes through the gateway, which checks the key at the edge before the sidecar
    # sees the request (tests/unit/charts/test_model_gateway.py): neither container checks it again.
    shipped = containers(filtered)
    assert "VLLM_API_KEY" not in env(shipped["vllm"])
    assert "API_KEY" not in env(shipped["guardrail-filter"])


def test_the_sidecar_runs_the_repository_proxy_code_on_the_vllm_image(filtered: ModelEndpointChart) -> None:
    pods = containers(filtered)
    sidecar = pods["guardrail-filter"]
    assert sidecar["image"] == pods["vllm"]["image"]
    assert sidecar["command"] == ["python3", "-m", "filter_proxy.server"]
    (code,) = [
        m
        for m in chart_manifests(filtered)
        if m["kind"] == "ConfigMap" and m["metadata"]["name"].endswith("-filter")
    ]
    assert code["data"] == {name: (PACKAGE_DIR / name).read_text(encoding="utf-8") for name in MODULES}
    shipped = {path.name for path in PACKAGE_DIR.glob("*.py")}
    assert shipped == set(MODULES), "a module of filter_proxy/ is not shipped in the ConfigMap"
    (mount,) = sidecar["volumeMounts"]
    assert mount["mountPath"] == "/opt/llm-inference/filter/filter_proxy"
    assert mount["readOnly"] is True
    assert env(sidecar)["PYTHONPATH"] == "/opt/llm-inference/filter"


def test_the_proxy_imports_only_the_standard_library_and_what_the_image_ships() -> None:
    imported: set[str] = set()
    for name in MODULES:
        tree = ast.parse((PACKAGE_DIR / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    assert imported - sys.stdlib_module_names <= IMAGE_PACKAGES, imported - sys.stdlib_module_names


def test_the_sidecar_is_restricted_and_bounded(filtered: ModelEndpointChart) -> None:
    sidecar = containers(filtered)["guardrail-filter"]
    context = sidecar["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sidecar["resources"]["limits"] == {"memory": "512Mi"}
    assert "nvidia.com/gpu" not in sidecar["resources"]["requests"]
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/filter/ready", "port": "filter"}


def test_the_sidecar_outlives_the_requests_it_carries(filtered: ModelEndpointChart) -> None:
    timing = shutdown_timing(120)  # prod's 8B version: max_request_seconds default
    sidecar = containers(filtered)["guardrail-filter"]
    sleep = sidecar["lifecycle"]["preStop"]["sleep"]["seconds"]
    shutdown = int(env(sidecar)["SHUTDOWN_TIMEOUT_SECONDS"])
    grace = of_kind(filtered, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert sleep == timing.pre_stop_min_wait  # still accepting while the ALB deregisters the pod
    assert shutdown == 120  # a request admitted just before SIGTERM may run its full length
    assert sleep + shutdown <= grace


def test_the_network_policy_admits_the_proxy_port_from_the_vpc(
    filtered: ModelEndpointChart, unfiltered: ModelEndpointChart
) -> None:
    def ports(chart: ModelEndpointChart) -> list[int]:
        policy = of_kind(chart, "NetworkPolicy")["spec"]
        return [port["port"] for port in policy["ingress"][0]["ports"]]

    assert ports(filtered) == [VLLM_PORT, FILTER_PORT]
    assert ports(unfiltered) == [VLLM_PORT]
