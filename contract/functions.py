"""Environment variables of the operational functions: set by CDK (constructs_lib, stacks/ops),
read by lambdas/ (documented in lambdas/README.md)."""

from __future__ import annotations

from typing import Final

# Both functions (constructs_lib/cluster_client_function.py -> lambdas/common/settings.py).
CLUSTER_NAME_ENV: Final = "CLUSTER_NAME"
CLUSTER_ENDPOINT_ENV: Final = "CLUSTER_ENDPOINT"
CLUSTER_CA_DATA_ENV: Final = "CLUSTER_CA_DATA"

# Spot interruption (stacks/ops/spot_interruption.py -> lambdas/spot_interruption/settings.py).
REBALANCE_ACTION_ENV: Final = "REBALANCE_ACTION"

# Off-hours scaler (stacks/ops/offhours_scaler.py -> lambdas/offhours_scaler/settings.py).
MODEL_NAMESPACE_ENV: Final = "MODEL_NAMESPACE"
DEPLOYMENTS_ENV: Final = "DEPLOYMENTS"
NODE_GROUPS_ENV: Final = "NODE_GROUPS"
FLOOR_REPLICAS_ENV: Final = "FLOOR_REPLICAS"
FLOOR_NODES_ENV: Final = "FLOOR_NODES"
OFF_HOURS_PER_NIGHT_ENV: Final = "OFF_HOURS_PER_NIGHT"
RETRY_SECONDS_ENV: Final = "RETRY_SECONDS"
READY_CHECK_MINUTES_ENV: Final = "READY_CHECK_MINUTES"
READY_CHECK_SCHEDULE_GROUP_ENV: Final = "READY_CHECK_SCHEDULE_GROUP"
READY_CHECK_ROLE_ARN_ENV: Final = "READY_CHECK_ROLE_ARN"
DEAD_LETTER_QUEUE_ARN_ENV: Final = "DEAD_LETTER_QUEUE_ARN"
