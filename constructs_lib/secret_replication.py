"""Replicates every Secrets Manager secret of a scope into the stage's replica region.

An aspect, so any secret added to the stage later (the model API key, for one) is replicated without
its author remembering to; a secret that already lists replica regions is left as written. Secrets the
stack derives per region (the ECR pull-through cache's copy of the operator's Docker Hub secret) are
left out: the failover stage creates its own, and a replica of the same name would block that.
"""

from __future__ import annotations

import jsii
from aws_cdk import IAspect, Stack
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import IConstruct

from config.disaster_recovery import replica_secrets_key_alias
from constructs_lib.image_cache import CREDENTIALS_SECRET_PREFIX

RECREATED_PER_REGION = (CREDENTIALS_SECRET_PREFIX,)


@jsii.implements(IAspect)
class ReplicateSecrets:
    """Adds ``ReplicaRegions: [{Region, KmsKeyId: <alias of the replica secrets key>}]`` to each secret."""

    def __init__(self, *, stage: str, replica_region: str) -> None:
        self._region = replica_region
        self._key = replica_secrets_key_alias(stage)

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, secretsmanager.CfnSecret):
            return
        name = Stack.of(node).resolve(node.name)
        if isinstance(name, str) and name.startswith(RECREATED_PER_REGION):
            return
        # The L2 Secret always sets a lazy list, empty unless replica regions were given.
        if not Stack.of(node).resolve(node.replica_regions):
            node.replica_regions = [
                secretsmanager.CfnSecret.ReplicaRegionProperty(region=self._region, kms_key_id=self._key)
            ]
