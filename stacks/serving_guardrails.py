"""The serving stack's part of input/output filtering: a Bedrock guardrail per filtered model, the
pods' permission to apply it, and the ConfigMap that tells the pods' filter proxy which one."""

from __future__ import annotations

from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from config import StageConfig
from constructs_lib.model_guardrail import ModelGuardrail
from constructs_lib.model_reader_role import ModelReaderRole
from constructs_lib.pod_identity import PodIdentityRole
from contract.kubernetes import MODELS_NAMESPACE, instance_name
from contract.serving import GUARDRAIL_ID_KEY, GUARDRAIL_VERSION_KEY, guardrail_config_map_name
from stacks.cluster_stack import ClusterHandle


def add_model_guardrails(
    scope: Construct,
    *,
    config: StageConfig,
    cluster: ClusterHandle,
    reader_roles: dict[str, ModelReaderRole],
    namespace: eks.KubernetesManifest | None,
) -> tuple[dict[str, ModelGuardrail], dict[str, iam.IRole]]:
    """Guardrails by model id, and the pod role of every filtered version by instance name.

    A version that already has a reader role gets the permission on it (a service account has
    one Pod Identity association); one without gets a role of its own.
    """
    guardrails: dict[str, ModelGuardrail] = {}
    roles: dict[str, iam.IRole] = {}
    for model in config.models:
        if not model.filtering.enabled:
            continue
        guardrail = ModelGuardrail(
            scope, f"Guardrail-{model.id}", model_id=model.id, stage=config.name, filtering=model.filtering
        )
        guardrails[model.id] = guardrail
        for version in model.versions:
            name = instance_name(model.id, version.name)
            if name in reader_roles:
                reader_roles[name].role.add_to_policy(guardrail.apply_statement())
                roles[name] = reader_roles[name].role
            else:
                roles[name] = PodIdentityRole(
                    scope,
                    f"Filter-{name}",
                    cluster_name=cluster.name,
                    namespace=MODELS_NAMESPACE,
                    service_account=name,
                    statements=[guardrail.apply_statement()],
                ).role
        config_map = eks.KubernetesManifest(
            scope,
            f"GuardrailConfig-{model.id}",
            cluster=cluster.cluster,
            manifest=[
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": guardrail_config_map_name(model.id), "namespace": MODELS_NAMESPACE},
                    "data": {
                        GUARDRAIL_ID_KEY: guardrail.guardrail_id,
                        GUARDRAIL_VERSION_KEY: guardrail.version_number,
                    },
                }
            ],
        )
        if namespace is not None:
            config_map.node.add_dependency(namespace)
    return guardrails, roles
