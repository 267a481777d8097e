"""The model API key in namespace `models`: a SecretStore for Secrets Manager and the ExternalSecret
that keeps the Kubernetes Secret `vllm-api-key` in step with it."""

from __future__ import annotations

import cdk8s
from constructs import Construct

from contract.kubernetes import MODELS_NAMESPACE
from contract.serving import API_KEY_SECRET, API_KEY_SECRET_FIELD, API_KEY_SECRET_STORE, StageValues
from k8s_charts.api_object import api_object

# How soon a rotated key reaches the Secret (each refresh is one GetSecretValue call).
REFRESH_INTERVAL = "5m"


class ApiKeyChart(cdk8s.Chart):
    """Props:
    values: deploy-time values (the secret's ARN, the region).
    """

    def __init__(self, scope: Construct, id_: str, *, values: StageValues) -> None:
        super().__init__(scope, id_, namespace=MODELS_NAMESPACE, disable_resource_name_hashes=True)
        # No `auth`: the controller's own Pod Identity credentials, which may read this secret only.
        self.secret_store = api_object(
            self,
            "SecretStore",
            api_version="external-secrets.io/v1",
            kind="SecretStore",
            metadata=cdk8s.ApiObjectMetadata(name=API_KEY_SECRET_STORE, namespace=MODELS_NAMESPACE),
            spec={"provider": {"aws": {"service": "SecretsManager", "region": values.region}}},
        )
        self.external_secret = api_object(
            self,
            "ExternalSecret",
            api_version="external-secrets.io/v1",
            kind="ExternalSecret",
            metadata=cdk8s.ApiObjectMetadata(name=API_KEY_SECRET, namespace=MODELS_NAMESPACE),
            spec={
                "refreshInterval": REFRESH_INTERVAL,
                "secretStoreRef": {"kind": "SecretStore", "name": API_KEY_SECRET_STORE},
                # Retain: deleting the ExternalSecret must not take the key from running pods.
                "target": {"name": API_KEY_SECRET, "creationPolicy": "Owner", "deletionPolicy": "Retain"},
                "data": [
                    {"secretKey": API_KEY_SECRET_FIELD, "remoteRef": {"key": values.api_key_secret_arn}}
                ],
            },
        )
