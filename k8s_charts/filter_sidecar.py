"""The filtering proxy (filter_proxy/) as a sidecar of a model pod whose model enables filtering.

The Service's target port is the proxy's, so every path to the model (ALB host or header rules,
or a router in front of the Services) passes through it; the proxy forwards to vLLM on localhost.
It runs on the pod's own vLLM image (already on the node; aiohttp, prometheus_client and
botocore come with it) with its code mounted read-only from a ConfigMap: no image of our own.
"""

from __future__ import annotations

from pathlib import Path

import cdk8s
import cdk8s_plus_36 as kplus
from constructs import Construct

from config.filtering import FilteringConfig
from contract.serving import GUARDRAIL_ID_KEY, GUARDRAIL_VERSION_KEY, guardrail_config_map_name
from k8s_charts.shutdown import ShutdownTiming

FILTER_PORT = 8080
FILTER_PORT_NAME = "filter"
CONTAINER_NAME = "guardrail-filter"
CODE_DIR = "/opt/llm-inference/filter"
PACKAGE = "filter_proxy"
PACKAGE_DIR = Path(__file__).resolve().parent.parent / PACKAGE
MODULES = ("__init__.py", "guardrail.py", "openai_body.py", "server.py")
READY_PATH = "/filter/ready"  # filter_proxy.server.READY_PATH
METRICS_PATH = "/filter/metrics"  # filter_proxy.server.METRICS_PATH
API_KEY_ENV = "API_KEY"  # filter_proxy.server.Settings.api_key


def add_filter_sidecar(
    scope: Construct,
    *,
    deployment: kplus.Deployment,
    model_id: str,
    filtering: FilteringConfig,
    image: str,
    upstream_port: int,
    region: str,
    timing: ShutdownTiming,
    metadata: cdk8s.ApiObjectMetadata,
    user: int,
    api_key: kplus.EnvValue | None = None,
) -> kplus.Container:
    """The proxy container and its code volume. `api_key` (default None: no check) is the model API
    key the proxy compares before screening, so an unauthenticated caller costs no guardrail call."""
    code = kplus.ConfigMap(
        scope,
        "FilterCode",
        metadata=cdk8s.ApiObjectMetadata(name=f"{metadata.name}-filter", labels=metadata.labels),
        data={name: (PACKAGE_DIR / name).read_text(encoding="utf-8") for name in MODULES},
    )
    volume = kplus.Volume.from_config_map(
        scope, "FilterCodeVolume", code, name="filter-code", default_mode=0o444
    )
    guardrail = kplus.ConfigMap.from_config_map_name(scope, "Guardrail", guardrail_config_map_name(model_id))
    env = {
        "PYTHONPATH": CODE_DIR,
        "PYTHONDONTWRITEBYTECODE": "1",  # read-only root filesystem
        "UPSTREAM_URL": f"http://127.0.0.1:{upstream_port}",
        "FILTER_PORT": str(FILTER_PORT),
        "MODEL_ID": model_id,
        "AWS_REGION": region,
        "CHECK_OUTPUT": "true" if filtering.check_output else "false",
        "STREAM_WINDOW_CHARS": str(filtering.stream_window_chars),
        "ON_ERROR": filtering.on_error,
        "GUARDRAIL_TIMEOUT_SECONDS": f"{filtering.timeout_seconds:g}",
        # In-flight requests finish after SIGTERM for as long as vLLM's own drain allows.
        "SHUTDOWN_TIMEOUT_SECONDS": str(timing.engine_shutdown_timeout),
    }
    container = deployment.add_container(
        name=CONTAINER_NAME,
        image=image,
        image_pull_policy=kplus.ImagePullPolicy.IF_NOT_PRESENT,
        command=["python3", "-m", f"{PACKAGE}.server"],
        env_variables={
            **{key: kplus.EnvValue.from_value(value) for key, value in env.items()},
            GUARDRAIL_ID_KEY: kplus.EnvValue.from_config_map(guardrail, GUARDRAIL_ID_KEY),
            GUARDRAIL_VERSION_KEY: kplus.EnvValue.from_config_map(guardrail, GUARDRAIL_VERSION_KEY),
            **({API_KEY_ENV: api_key} if api_key is not None else {}),
        },
        volume_mounts=[kplus.VolumeMount(path=f"{CODE_DIR}/{PACKAGE}", volume=volume, read_only=True)],
        security_context=kplus.ContainerSecurityContextProps(
            ensure_non_root=True,
            user=user,
            group=user,
            read_only_root_filesystem=True,
            allow_privilege_escalation=False,
            privileged=False,
        ),
    )
    deployment.add_volume(volume)
    return container


def sidecar_patches(*, index: int, timing: ShutdownTiming) -> list[cdk8s.JsonPatch]:
    """What cdk8s-plus cannot express for the sidecar (see ModelEndpointChart._patch_pod_spec)."""
    container = f"/spec/template/spec/containers/{index}"
    probe = {"httpGet": {"path": READY_PATH, "port": {"value": FILTER_PORT_NAME}}, "periodSeconds": 5}
    return [
        cdk8s.JsonPatch.replace(
            f"{container}/ports",
            [{"name": FILTER_PORT_NAME, "containerPort": FILTER_PORT, "protocol": "TCP"}],
        ),
        cdk8s.JsonPatch.replace(
            f"{container}/resources",
            {
                "requests": {"cpu": {"value": "500m"}, "memory": {"value": "512Mi"}},
                "limits": {"memory": {"value": "512Mi"}},
            },
        ),
        cdk8s.JsonPatch.add(
            f"{container}/readinessProbe", {**probe, "timeoutSeconds": 2, "failureThreshold": 3}
        ),
        cdk8s.JsonPatch.add(
            f"{container}/livenessProbe", {**probe, "timeoutSeconds": 5, "failureThreshold": 6}
        ),
        # Keep accepting while the ALB deregisters the pod (vLLM's drain waits the same time).
        cdk8s.JsonPatch.add(
            f"{container}/lifecycle", {"preStop": {"sleep": {"seconds": timing.pre_stop_min_wait}}}
        ),
        cdk8s.JsonPatch.add(f"{container}/securityContext/capabilities", {"drop": ["ALL"]}),
        cdk8s.JsonPatch.add(f"{container}/securityContext/seccompProfile", {"type": "RuntimeDefault"}),
    ]
