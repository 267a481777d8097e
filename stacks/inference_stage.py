"""One deployable environment (dev, staging or prod): the unit `cdk deploy` and the pipeline ship."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aspects, Environment, Stage, Tags
from constructs import Construct

from config import StageConfig
from constructs_lib.secret_replication import ReplicateSecrets
from stacks.cluster_stack import ClusterStack
from stacks.model_replica_stack import ModelReplicaStack
from stacks.network_stack import NetworkStack
from stacks.observability_stack import ObservabilityStack
from stacks.ops_stack import OpsStack
from stacks.platform_stack import PlatformStack
from stacks.serving_stack import ServingStack
from stacks.smoke_check_stack import SmokeCheckStack


class InferenceStage(Stage):
    """All stacks of a stage, wired with typed references. Exposes each stack as an attribute
    (``replica`` is None without ``disaster_recovery.replica_region``).

    :param smoke_check_trusted_account: account allowed to start the post-deploy smoke check (the
        pipeline account). Default: the stage's own account.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: StageConfig,
        smoke_check_trusted_account: str | None = None,
        **kwargs: Any,
    ) -> None:
        env = Environment(account=config.account, region=config.region)
        super().__init__(scope, id_, env=env, **kwargs)
        self.config = config
        self.replica = self._replica(config)
        self.network = NetworkStack(self, "Network", config=config)
        self.cluster = ClusterStack(
            self, "Cluster", config=config, vpc=self.network.vpc, logs_key=self.network.logs_key
        )
        self.observability = ObservabilityStack(
            self, "Observability", config=config, vpc=self.network.vpc, cluster=self.cluster.handle
        )
        self.platform = PlatformStack(
            self,
            "Platform",
            config=config,
            cluster=self.cluster.handle,
            logs_key=self.network.logs_key,
            workspace=self.observability.workspace,
        )
        self.serving = ServingStack(
            self,
            "Serving",
            config=config,
            cluster=self.cluster.handle,
            vpc=self.network.vpc,
            logs_key=self.network.logs_key,
            prometheus_query_url=self.observability.prometheus_query_url,
        )
        if self.replica is not None:
            # The replication rule names the replica bucket and key, which must exist first.
            self.serving.add_dependency(self.replica)
        # ScaledObjects need KEDA's CRDs and the keda-aws-amp authentication from the platform.
        self.serving.add_dependency(self.platform)
        self.ops = OpsStack(
            self,
            "Ops",
            config=config,
            vpc=self.network.vpc,
            cluster=self.cluster.handle,
            logs_key=self.network.logs_key,
            alerts_topic=self.observability.alerts_topic,
        )
        # The off-hours scaler's Role lives in the `models` namespace and it pauses the
        # ScaledObjects there: both are ServingStack's.
        self.ops.add_dependency(self.serving)
        self.smoke_check = SmokeCheckStack(
            self,
            "SmokeCheck",
            config=config,
            vpc=self.network.vpc,
            cluster=self.cluster.handle,
            logs_key=self.network.logs_key,
            trusted_account=smoke_check_trusted_account,
            api_key_secret=self.serving.api_key.secret if self.serving.api_key else None,
        )
        for key, value in config.tags.items():
            Tags.of(self).add(key, value)

    def _replica(self, config: StageConfig) -> ModelReplicaStack | None:
        """With a replica region (and not already the failover copy): the replica bucket and keys there,
        and every secret of the stage replicated to it."""
        dr = config.disaster_recovery
        if dr.replica_region is None or dr.failover:
            return None
        Aspects.of(self).add(ReplicateSecrets(stage=config.name, replica_region=dr.replica_region))
        return ModelReplicaStack(
            self,
            "Replica",
            stage=config.name,
            env=Environment(account=config.account, region=dr.replica_region),
        )
