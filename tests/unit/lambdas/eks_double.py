# ruff: noqa: N803 - the double mirrors boto3's camelCase keyword arguments
"""What moto's EKS lacks, added for the off-hours tests.

- moto tags clusters only: `allow_nodegroup_tags` extends TagResource/UntagResource to node groups.
- moto accepts any scaling config: `CheckedEks` enforces EKS's rules (0 <= min <= desired <= max,
  max >= 1) and injects faults (UPDATING status, ResourceInUseException, throttling) per call.
- `MemoryEks`: node groups in a dict, for tests that make hundreds of calls.
- `fault_hook`, asked about every call, makes it fail before it is applied (`ServerException`, the
  EKS API's 500) or apply it and lose the answer (botocore's `ReadTimeoutError`), or apply it and
  answer `ResourceInUseException` (what botocore's resend of a lost update meets).
"""

from __future__ import annotations

import copy
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from moto.eks.models import EKSBackend


def allow_nodegroup_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    tag_cluster, untag_cluster = EKSBackend.tag_resource, EKSBackend.untag_resource

    def find(backend: EKSBackend, arn: str) -> Any:
        arn = arn.split("?")[0]  # moto reads the ARN from a path that keeps the query string
        for cluster in backend.clusters.values():
            for group in cluster.nodegroups.values():
                if group.arn == arn:
                    return group
        return None

    def tag_resource(self: EKSBackend, resource_arn: str, tags: dict[str, str]) -> None:
        group = find(self, resource_arn)
        if group is None:
            return tag_cluster(self, resource_arn, tags)
        group.tags.update(tags)
        return None

    def untag_resource(self: EKSBackend, resource_arn: str, tag_keys: list[str]) -> None:
        group = find(self, resource_arn)
        if group is None:
            return untag_cluster(self, resource_arn, tag_keys)
        for key in [tag_keys] if isinstance(tag_keys, str) else tag_keys:  # moto passes one as str
            group.tags.pop(key, None)
        return None

    monkeypatch.setattr(EKSBackend, "tag_resource", tag_resource)
    monkeypatch.setattr(EKSBackend, "untag_resource", untag_resource)


def client_error(code: str, operation: str, message: str = "injected") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class CheckedEks:
    """Delegates to a moto EKS client; see the module docstring."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[tuple[float, str, str]] = []  # (monotonic time, operation, node group)
        # (operation, node group) -> queued faults: a ClientError to raise, or "UPDATING".
        self.faults: dict[tuple[str, str], list[Any]] = defaultdict(list)
        # (operation, node group) -> None, "fail" or "lose" (see the module docstring).
        self.fault_hook: Callable[[str, str], str | None] | None = None

    def _fault(self, operation: str, group: str) -> Any:
        queue = self.faults.get((operation, group))
        return queue.pop(0) if queue else None

    def _hooked(self, operation: str, group: str, call: Callable[[], Any]) -> Any:
        fault = self.fault_hook(operation, group) if self.fault_hook else None
        if fault == "fail":
            raise client_error("ServerException", operation, "injected failure; nothing applied")
        result = call()
        if fault == "lose":
            raise ReadTimeoutError(endpoint_url=f"https://eks.amazonaws.com/{operation}")
        if fault == "lose-then-busy":  # botocore resent the lost request; EKS is busy with the first
            raise client_error("ResourceInUseException", operation, "update already in progress")
        return result

    def _group_of_arn(self, arn: str) -> str:
        return arn.split("/")[2] if arn.count("/") >= 2 else arn

    def describe_nodegroup(self, *, clusterName: str, nodegroupName: str) -> Any:
        self.calls.append((time.monotonic(), "describe_nodegroup", nodegroupName))
        fault = self._fault("describe_nodegroup", nodegroupName)
        if isinstance(fault, ClientError):
            raise fault
        result = self._hooked(
            "describe_nodegroup",
            nodegroupName,
            lambda: self._client.describe_nodegroup(clusterName=clusterName, nodegroupName=nodegroupName),
        )
        if fault == "UPDATING":
            result["nodegroup"]["status"] = "UPDATING"
        return result

    def update_nodegroup_config(
        self, *, clusterName: str, nodegroupName: str, scalingConfig: dict[str, int]
    ) -> Any:
        self.calls.append((time.monotonic(), "update_nodegroup_config", nodegroupName))
        fault = self._fault("update_nodegroup_config", nodegroupName)
        if fault is not None:
            raise fault
        current = self._client.describe_nodegroup(clusterName=clusterName, nodegroupName=nodegroupName)[
            "nodegroup"
        ]["scalingConfig"]
        merged = {**current, **scalingConfig}
        low, want, high = merged["minSize"], merged["desiredSize"], merged["maxSize"]
        if not (0 <= low <= want <= high) or high < 1:
            raise client_error("InvalidParameterException", "UpdateNodegroupConfig", f"bad scaling {merged}")
        return self._hooked(
            "update_nodegroup_config",
            nodegroupName,
            lambda: self._client.update_nodegroup_config(
                clusterName=clusterName, nodegroupName=nodegroupName, scalingConfig=scalingConfig
            ),
        )

    def tag_resource(self, *, resourceArn: str, tags: dict[str, str]) -> Any:
        group = self._group_of_arn(resourceArn)
        self.calls.append((time.monotonic(), "tag_resource", group))
        fault = self._fault("tag_resource", group)
        if fault is not None:
            raise fault
        return self._hooked(
            "tag_resource", group, lambda: self._client.tag_resource(resourceArn=resourceArn, tags=tags)
        )

    def untag_resource(self, *, resourceArn: str, tagKeys: list[str]) -> Any:
        group = self._group_of_arn(resourceArn)
        self.calls.append((time.monotonic(), "untag_resource", group))
        fault = self._fault("untag_resource", group)
        if fault is not None:
            raise fault
        return self._hooked(
            "untag_resource",
            group,
            lambda: self._client.untag_resource(resourceArn=resourceArn, tagKeys=tagKeys),
        )

    def writes(self) -> list[tuple[float, str, str]]:
        return [c for c in self.calls if c[1] != "describe_nodegroup"]


class MemoryEks:
    """EKS node groups in a dict, answering like boto3 (the four calls the scaler makes).

    For tests that make hundreds of calls, where moto's ~10 ms a call adds up; wrap it in
    `CheckedEks` for EKS's scaling rules and the fault hooks.
    """

    def __init__(self, cluster: str, *, region: str = "us-east-1", account: str = "123456789012") -> None:
        self.cluster = cluster
        self._arn_prefix = f"arn:aws:eks:{region}:{account}:nodegroup/{cluster}"
        self.groups: dict[str, dict[str, Any]] = {}

    def add_group(self, name: str, low: int, want: int, high: int) -> None:
        self.groups[name] = {
            "nodegroupName": name,
            "clusterName": self.cluster,
            "nodegroupArn": f"{self._arn_prefix}/{name}/{len(self.groups):08d}",
            "status": "ACTIVE",
            "scalingConfig": {"minSize": low, "desiredSize": want, "maxSize": high},
            "tags": {},
        }

    def _group(self, cluster: str, name: str, operation: str) -> dict[str, Any]:
        if cluster != self.cluster or name not in self.groups:
            raise client_error(
                "ResourceNotFoundException", operation, f"No node group found for name: {name}."
            )
        return self.groups[name]

    def _group_by_arn(self, arn: str, operation: str) -> dict[str, Any]:
        for group in self.groups.values():
            if group["nodegroupArn"] == arn:
                return group
        raise client_error("ResourceNotFoundException", operation, f"no resource {arn}")

    def describe_nodegroup(self, *, clusterName: str, nodegroupName: str) -> Any:
        return {"nodegroup": copy.deepcopy(self._group(clusterName, nodegroupName, "DescribeNodegroup"))}

    def update_nodegroup_config(
        self, *, clusterName: str, nodegroupName: str, scalingConfig: dict[str, int]
    ) -> Any:
        group = self._group(clusterName, nodegroupName, "UpdateNodegroupConfig")
        group["scalingConfig"] = {**group["scalingConfig"], **scalingConfig}
        return {"update": {"type": "ConfigUpdate", "status": "InProgress"}}

    def tag_resource(self, *, resourceArn: str, tags: dict[str, str]) -> Any:
        self._group_by_arn(resourceArn, "TagResource")["tags"].update(tags)
        return {}

    def untag_resource(self, *, resourceArn: str, tagKeys: list[str]) -> Any:
        group = self._group_by_arn(resourceArn, "UntagResource")
        for key in tagKeys:
            group["tags"].pop(key, None)
        return {}
