"""One model version served by vLLM: Deployment, Service, ServiceAccount, PDB, NetworkPolicy, ScaledObject."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cdk8s
import cdk8s_plus_36 as kplus
from constructs import Construct

from config.cluster import GpuNodeGroupConfig
from config.gpu_sharing import requested_resource
from config.serving import ModelConfig, ModelVersion, ScalingRules
from contract.kubernetes import (
    GPU_TAINT_KEY,
    GPU_TAINT_VALUE,
    KEDA_AUTHENTICATION,
    MODELS_NAMESPACE,
    NODE_GROUP_LABEL,
    OBSERVABILITY_NAMESPACE,
    VLLM_PORT_NAME,
    instance_name,
    pod_labels,
    selector_labels,
)
from contract.serving import API_KEY_ENV, API_KEY_SECRET_FIELD, StageValues
from contract.telemetry import OTLP_GRPC_PORT
from k8s_charts.api_object import api_object
from k8s_charts.filter_sidecar import FILTER_PORT, FILTER_PORT_NAME, add_filter_sidecar, sidecar_patches
from k8s_charts.images import docker_hub_image
from k8s_charts.keep_alive import SERVER_KEEP_ALIVE_SECONDS
from k8s_charts.model_gateway import ENVOY_POD_LABELS, serving_port
from k8s_charts.network_policy_rules import DNS_EGRESS, from_cidrs, from_metrics_collectors
from k8s_charts.pod_resources import pod_resources, streamer_memory_limit_bytes
from k8s_charts.shutdown import ShutdownTiming, shutdown_timing
from k8s_charts.vllm_args import VLLM_COMMAND, VLLM_IMAGE, VLLM_PORT, loads_from_s3, vllm_args

# Restricted Pod Security: a fixed non-root identity outside the range image users commonly take.
RUN_AS_USER = 10001
RUN_AS_GROUP = 10001
CACHE_DIR = "/cache"
STARTUP_PROBE_PERIOD_SECONDS = 10
READINESS_PROBE_PERIOD_SECONDS = 5
POD_IDENTITY_AGENT = "169.254.170.23/32"  # EKS Pod Identity agent on every node (link-local)
DRAIN_SCRIPT = Path(__file__).with_name("pre_stop_drain.py")
DRAIN_DIR = "/opt/llm-inference/drain"


def prometheus_selector(model_id: str, version: str) -> str:
    return f'namespace="{MODELS_NAMESPACE}",model_id="{model_id}",model_version="{version}"'


def queue_depth_query(model_id: str, version: str) -> str:
    return f"sum(vllm:num_requests_waiting{{{prometheus_selector(model_id, version)}}})"


def kv_cache_query(model_id: str, version: str) -> str:
    # Summed and compared as AverageValue: the HPA divides by the replica count, so the target is
    # the mean KV-cache use per replica, and fallback (AverageValue only) still applies.
    return f"sum(vllm:kv_cache_usage_perc{{{prometheus_selector(model_id, version)}}})"


def pre_stop_command(timing: ShutdownTiming) -> list[str]:
    return [
        "python3",
        f"{DRAIN_DIR}/{DRAIN_SCRIPT.name}",
        "--port",
        str(VLLM_PORT),
        "--min-wait",
        str(timing.pre_stop_min_wait),
        "--deadline",
        str(timing.pre_stop_deadline),
    ]


def _number(value: float) -> str:
    return f"{value:g}"


def _typed(value: str) -> dict[str, str]:
    """An IntOrString or Quantity as the cdk8s L1 serialiser expects it inside a JSON patch."""
    return {"value": value}


def _behavior(rules: ScalingRules) -> dict[str, Any]:
    return {
        "stabilizationWindowSeconds": rules.stabilization_window_seconds,
        "selectPolicy": rules.select_policy,
        "policies": [
            {"type": policy.type, "value": policy.value, "periodSeconds": policy.period_seconds}
            for policy in rules.policies
        ],
    }


class ModelEndpointChart(cdk8s.Chart):
    """Everything one model version needs in namespace `models`.

    Props:
        model: the registry entry (id, autoscaling).
        version: the version served by this chart.
        node_groups: the GPU node groups the version may run on (sizes the pod's requests).
        values: deploy-time values (bucket name, Prometheus URL, region).
        source_cidrs: the subnets the ALB (target type ip) and the AMP scraper connect from
            (config.subnets.load_balancer_source_cidrs); not the VPC, which is also the pod range.
        api_key_secret: the Secret whose `api-key` vLLM requires on /v1/* (env VLLM_API_KEY).
            Default: None, no authentication.
        admit_gateway: admit the Envoy AI Gateway pods (`model` routing, k8s_charts/model_gateway.py)
            on the port the Service targets. Default: False.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        model: ModelConfig,
        version: ModelVersion,
        node_groups: list[GpuNodeGroupConfig],
        values: StageValues,
        source_cidrs: list[str],
        api_key_secret: str | None = None,
        admit_gateway: bool = False,
    ) -> None:
        super().__init__(scope, id_, namespace=MODELS_NAMESPACE, disable_resource_name_hashes=True)
        self.api_key_secret = (
            kplus.Secret.from_secret_name(self, "ApiKeySecret", api_key_secret) if api_key_secret else None
        )
        self.instance = instance_name(model.id, version.name)
        self.pod_labels = pod_labels(model.id, version.name)
        self.selector = selector_labels(model.id, version.name)
        metadata = cdk8s.ApiObjectMetadata(name=self.instance, labels=self.pod_labels)

        self.service_account = kplus.ServiceAccount(
            self, "ServiceAccount", metadata=metadata, automount_token=False
        )
        self.deployment = self._deployment(version, node_groups, values, metadata)
        # Input/output filtering (config/filtering.py): a proxy sidecar takes the Service's traffic.
        filtered = model.filtering.enabled
        self.filter_container = self._filter_sidecar(model, version, values, metadata) if filtered else None
        self.service = api_object(
            self,
            "Service",
            api_version="v1",
            kind="Service",
            metadata=metadata,
            spec={
                "type": "ClusterIP",
                "selector": self.selector,
                "ports": [
                    {
                        "name": VLLM_PORT_NAME,
                        "port": VLLM_PORT,
                        "targetPort": FILTER_PORT_NAME if filtered else VLLM_PORT_NAME,
                        "protocol": "TCP",
                    }
                ],
            },
        )
        self.disruption_budget = api_object(
            self,
            "DisruptionBudget",
            api_version="policy/v1",
            kind="PodDisruptionBudget",
            metadata=metadata,
            spec={
                # One pod at a time: drains proceed even at one replica, never a whole version at once.
                "maxUnavailable": 1,
                "selector": {"matchLabels": self.selector},
                # A pod that never became ready must not block node drains (Spot, off-hours).
                "unhealthyPodEvictionPolicy": "AlwaysAllow",
            },
        )
        self.network_policy = self._network_policy(
            source_cidrs, metadata, extra_ports=[FILTER_PORT] if filtered else []
        )
        if admit_gateway:
            gateway_rule = {
                "from": [{"podSelector": {"matchLabels": ENVOY_POD_LABELS}}],
                "ports": [{"protocol": "TCP", "port": serving_port(model)}],
            }
            self.network_policy.add_json_patch(cdk8s.JsonPatch.add("/spec/ingress/-", gateway_rule))
        self.scaled_object = self._scaled_object(model, version, values, metadata)

    def _deployment(
        self,
        version: ModelVersion,
        node_groups: list[GpuNodeGroupConfig],
        values: StageValues,
        metadata: cdk8s.ApiObjectMetadata,
    ) -> kplus.Deployment:
        sizes = pod_resources(version, node_groups)
        timing = shutdown_timing(version.max_request_seconds)
        # The preStop hook's script (stdlib Python, run by the image's python3), read-only.
        drain_script = kplus.ConfigMap(
            self,
            "DrainScript",
            metadata=metadata,
            data={DRAIN_SCRIPT.name: DRAIN_SCRIPT.read_text(encoding="utf-8")},
        )
        drain = kplus.Volume.from_config_map(
            self, "DrainVolume", drain_script, name="drain", default_mode=0o444
        )
        cache = kplus.Volume.from_empty_dir(
            self, "CacheVolume", "cache", size_limit=cdk8s.Size.gibibytes(sizes.cache_gib)
        )
        tmp = kplus.Volume.from_empty_dir(self, "TmpVolume", "tmp", size_limit=cdk8s.Size.gibibytes(2))
        shm = kplus.Volume.from_empty_dir(
            self,
            "ShmVolume",
            "dshm",
            medium=kplus.EmptyDirMedium.MEMORY,
            size_limit=cdk8s.Size.gibibytes(sizes.shm_gib),
        )
        env = {
            "AWS_REGION": values.region,
            # The read-only root filesystem leaves only the volumes writable; every cache goes there.
            "HOME": CACHE_DIR,
            "XDG_CACHE_HOME": CACHE_DIR,
            "HF_HOME": f"{CACHE_DIR}/huggingface",
            "VLLM_CACHE_ROOT": f"{CACHE_DIR}/vllm",
            "TRITON_CACHE_DIR": f"{CACHE_DIR}/triton",
            # UID 10001 has no passwd entry; torch asks getpass.getuser(), which reads USER first.
            "USER": "vllm",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            # Outlive the ALB's idle timeout so the ALB, not vLLM, closes idle connections.
            "VLLM_HTTP_TIMEOUT_KEEP_ALIVE": str(SERVER_KEEP_ALIVE_SECONDS),
            # The X-Ray service name of this version's spans (read by the OpenTelemetry SDK).
            "OTEL_SERVICE_NAME": self.instance,
        }
        if loads_from_s3(version):
            # Bound the streamer's host buffer to what the pod's memory limit leaves (default: unlimited).
            env["RUNAI_STREAMER_MEMORY_LIMIT"] = str(streamer_memory_limit_bytes(version, sizes))
        deployment = kplus.Deployment(
            self,
            "Deployment",
            metadata=metadata,
            select=False,
            pod_metadata=cdk8s.ApiObjectMetadata(labels=self.pod_labels),
            service_account=self.service_account,
            automount_service_account_token=False,
            termination_grace_period=cdk8s.Duration.seconds(timing.termination_grace_period),
            security_context=kplus.PodSecurityContextProps(
                ensure_non_root=True, user=RUN_AS_USER, group=RUN_AS_GROUP, fs_group=RUN_AS_GROUP
            ),
            volumes=[cache, tmp, shm, drain],
            containers=[
                kplus.ContainerProps(
                    name="vllm",
                    image=docker_hub_image(
                        f"{VLLM_IMAGE}:{version.image_tag}", mirror=values.docker_hub_mirror
                    ),
                    image_pull_policy=kplus.ImagePullPolicy.IF_NOT_PRESENT,
                    command=VLLM_COMMAND,
                    args=vllm_args(version, model_bucket_name=values.model_bucket_name),
                    env_variables=self._env_variables(env),
                    volume_mounts=[
                        kplus.VolumeMount(path=CACHE_DIR, volume=cache),
                        kplus.VolumeMount(path="/tmp", volume=tmp),  # noqa: S108 - a private emptyDir
                        kplus.VolumeMount(path="/dev/shm", volume=shm),  # noqa: S108 - a private emptyDir
                        kplus.VolumeMount(path=DRAIN_DIR, volume=drain, read_only=True),
                    ],
                    security_context=kplus.ContainerSecurityContextProps(
                        ensure_non_root=True,
                        user=RUN_AS_USER,
                        group=RUN_AS_GROUP,
                        read_only_root_filesystem=True,
                        allow_privilege_escalation=False,
                        privileged=False,
                    ),
                )
            ],
        )
        deployment.select(kplus.LabelSelector.of(labels=self.selector))
        self._patch_pod_spec(deployment, version, sizes.cpu, sizes.memory_gib, timing)
        return deployment

    def _env_variables(self, env: dict[str, str]) -> dict[str, kplus.EnvValue]:
        variables = {key: kplus.EnvValue.from_value(value) for key, value in env.items()}
        api_key = self._api_key_env()
        if api_key is not None:
            variables[API_KEY_ENV] = api_key
        return variables

    def _api_key_env(self) -> kplus.EnvValue | None:
        """The API key as a Secret reference (the value stays in the Secret, out of the manifest and
        the args), for vLLM and for the filter sidecar, which must refuse a bad key before it spends
        a guardrail call on the prompt."""
        if self.api_key_secret is None:
            return None
        return kplus.EnvValue.from_secret_value(
            kplus.SecretValue(secret=self.api_key_secret, key=API_KEY_SECRET_FIELD), optional=False
        )

    def _patch_pod_spec(
        self,
        deployment: kplus.Deployment,
        version: ModelVersion,
        cpu: int,
        memory_gib: int,
        timing: ShutdownTiming,
    ) -> None:
        """What cdk8s-plus cannot express: GPU resources, named-port HTTP probes, preStop drain,
        tolerations, node affinity with In, seccomp, zone/host spread, and no `replicas`."""
        pod = "/spec/template/spec"
        container = f"{pod}/containers/0"
        # Patches on a typed cdk8s object are re-serialised through its L1 types, which read
        # IntOrString and Quantity values from a `value` key; plain strings would be dropped.
        http_get = {"path": "/health", "port": _typed(VLLM_PORT_NAME)}
        # A shared GPU is one time slice (nvidia.com/gpu) or one MIG device (nvidia.com/mig-<profile>).
        gpu_resource = requested_resource(version)
        gpus = _typed("1" if version.gpu_share else str(version.gpus_per_replica))
        memory = _typed(f"{memory_gib}Gi")
        patches = [
            # KEDA's HPA owns the replica count; a replicas field would fight it on every apply.
            cdk8s.JsonPatch.remove("/spec/replicas"),
            # cdk8s-plus's construct-path label would rename pods whenever the chart id changes.
            cdk8s.JsonPatch.remove("/spec/template/metadata/labels/cdk8s.io~1metadata.addr"),
            cdk8s.JsonPatch.replace(
                f"{container}/resources",
                {
                    "requests": {"cpu": _typed(str(cpu)), "memory": memory, gpu_resource: gpus},
                    # No CPU limit: throttling the tokenizer and scheduler threads costs latency.
                    "limits": {"memory": memory, gpu_resource: gpus},
                },
            ),
            cdk8s.JsonPatch.replace(
                f"{container}/ports",
                [{"name": VLLM_PORT_NAME, "containerPort": VLLM_PORT, "protocol": "TCP"}],
            ),
            cdk8s.JsonPatch.add(
                f"{container}/startupProbe",
                {
                    "httpGet": http_get,
                    "periodSeconds": STARTUP_PROBE_PERIOD_SECONDS,
                    "timeoutSeconds": 5,
                    # Model download, weight load and CUDA graph capture take minutes, not seconds.
                    "failureThreshold": version.startup_timeout_minutes * 60 // STARTUP_PROBE_PERIOD_SECONDS,
                },
            ),
            cdk8s.JsonPatch.add(
                f"{container}/readinessProbe",
                {
                    "httpGet": http_get,
                    "periodSeconds": READINESS_PROBE_PERIOD_SECONDS,
                    "timeoutSeconds": 3,
                    "failureThreshold": 3,
                },
            ),
            cdk8s.JsonPatch.add(
                f"{container}/livenessProbe",
                {"httpGet": http_get, "periodSeconds": 15, "timeoutSeconds": 10, "failureThreshold": 4},
            ),
            # Keep serving until in-flight requests finish (k8s_charts/shutdown.py has the budget).
            cdk8s.JsonPatch.add(
                f"{container}/lifecycle", {"preStop": {"exec": {"command": pre_stop_command(timing)}}}
            ),
            cdk8s.JsonPatch.add(f"{container}/securityContext/capabilities", {"drop": ["ALL"]}),
            cdk8s.JsonPatch.add(f"{container}/securityContext/seccompProfile", {"type": "RuntimeDefault"}),
            cdk8s.JsonPatch.add(f"{pod}/securityContext/seccompProfile", {"type": "RuntimeDefault"}),
            cdk8s.JsonPatch.add(
                f"{pod}/tolerations",
                [
                    {
                        "key": GPU_TAINT_KEY,
                        "operator": "Equal",
                        "value": GPU_TAINT_VALUE,
                        "effect": "NoSchedule",
                    }
                ],
            ),
            cdk8s.JsonPatch.add(
                f"{pod}/affinity",
                {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {
                                            "key": NODE_GROUP_LABEL,
                                            "operator": "In",
                                            "values": list(version.node_groups),
                                        }
                                    ]
                                }
                            ]
                        }
                    }
                },
            ),
            cdk8s.JsonPatch.add(
                f"{pod}/topologySpreadConstraints",
                [
                    # ScheduleAnyway: GPU capacity is scarce per zone; a skewed pod beats no pod.
                    {
                        "maxSkew": 1,
                        "topologyKey": key,
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": self.selector},
                    }
                    for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
                ],
            ),
        ]
        cdk8s.ApiObject.of(deployment).add_json_patch(*patches)

    def _filter_sidecar(
        self,
        model: ModelConfig,
        version: ModelVersion,
        values: StageValues,
        metadata: cdk8s.ApiObjectMetadata,
    ) -> kplus.Container:
        timing = shutdown_timing(version.max_request_seconds)
        container = add_filter_sidecar(
            self,
            deployment=self.deployment,
            model_id=model.id,
            filtering=model.filtering,
            image=docker_hub_image(f"{VLLM_IMAGE}:{version.image_tag}", mirror=values.docker_hub_mirror),
            upstream_port=VLLM_PORT,
            region=values.region,
            timing=timing,
            metadata=metadata,
            user=RUN_AS_USER,
            api_key=self._api_key_env(),
        )
        cdk8s.ApiObject.of(self.deployment).add_json_patch(*sidecar_patches(index=1, timing=timing))
        return container

    def _network_policy(
        self, source_cidrs: list[str], metadata: cdk8s.ApiObjectMetadata, *, extra_ports: list[int]
    ) -> cdk8s.ApiObject:
        http = [{"protocol": "TCP", "port": port} for port in (VLLM_PORT, *extra_ports)]
        return api_object(
            self,
            "NetworkPolicy",
            api_version="networking.k8s.io/v1",
            kind="NetworkPolicy",
            metadata=metadata,
            spec={
                "podSelector": {"matchLabels": self.selector},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [
                    # The ALB (target type ip) and the AMP managed scraper, from their own subnets.
                    from_cidrs(source_cidrs, http),
                    # An in-cluster collector, from namespaces the platform labels for it.
                    from_metrics_collectors(http),
                ],
                "egress": [
                    DNS_EGRESS,
                    # Credentials from the EKS Pod Identity agent on the node.
                    {
                        "to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}],
                        "ports": [{"protocol": "TCP", "port": 80}],
                    },
                    # OTLP/gRPC traces to the OpenTelemetry collector (--otlp-traces-endpoint).
                    {
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": OBSERVABILITY_NAMESPACE}
                                }
                            }
                        ],
                        "ports": [{"protocol": "TCP", "port": OTLP_GRPC_PORT}],
                    },
                    # S3 (gateway endpoint: public prefix-list addresses), STS and KMS over HTTPS.
                    {
                        "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                        "ports": [{"protocol": "TCP", "port": 443}],
                    },
                ],
            },
        )

    def _scaled_object(
        self,
        model: ModelConfig,
        version: ModelVersion,
        values: StageValues,
        metadata: cdk8s.ApiObjectMetadata,
    ) -> cdk8s.ApiObject:
        scaling = model.autoscaling

        def trigger(name: str, query: str, threshold: float) -> dict[str, Any]:
            return {
                "type": "prometheus",
                "name": name,
                "metricType": "AverageValue",
                "metadata": {
                    "serverAddress": values.prometheus_query_url,
                    "query": query,
                    "threshold": _number(threshold),
                    "awsRegion": values.region,
                    "identityOwner": "operator",
                    # An empty result is an error, not 0: a broken metrics path must trigger the
                    # fallback replicas instead of silently holding the minimum (KEDA default: true).
                    "ignoreNullValues": "false",
                },
                "authenticationRef": {"kind": "ClusterTriggerAuthentication", "name": KEDA_AUTHENTICATION},
            }

        triggers = [
            trigger("queue-depth", queue_depth_query(model.id, version.name), scaling.target_queue_depth)
        ]
        if scaling.target_kv_cache_usage is not None:
            triggers.append(
                trigger("kv-cache", kv_cache_query(model.id, version.name), scaling.target_kv_cache_usage)
            )
        return api_object(
            self,
            "ScaledObject",
            api_version="keda.sh/v1alpha1",
            kind="ScaledObject",
            metadata=metadata,
            spec={
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": self.instance},
                "pollingInterval": scaling.polling_interval_seconds,
                "minReplicaCount": scaling.min_replicas,
                "maxReplicaCount": scaling.max_replicas,
                "fallback": {"failureThreshold": 3, "replicas": scaling.fallback_replicas},
                "advanced": {
                    "horizontalPodAutoscalerConfig": {
                        "behavior": {
                            "scaleUp": _behavior(scaling.scale_up),
                            "scaleDown": _behavior(scaling.scale_down),
                        }
                    }
                },
                "triggers": triggers,
            },
        )
