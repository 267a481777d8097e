"""Every workload pod the serving stack applies passes the Pod Security Standard "restricted".

Fields checked (https://kubernetes.io/docs/concepts/security/pod-security-standards/):
baseline  - spec.hostNetwork, spec.hostPID, spec.hostIPC unset or false
          - containers[*].securityContext.privileged unset or false
          - containers[*].securityContext.capabilities.add: none (restricted allows only NET_BIND_SERVICE)
          - spec.volumes[*]: no hostPath; restricted: only configMap, csi, downwardAPI, emptyDir,
            ephemeral, persistentVolumeClaim, projected, secret
          - containers[*].ports[*].hostPort unset or 0
          - securityContext.seLinuxOptions.type, appArmorProfile, procMount, sysctls: unset
restricted- containers[*].securityContext.allowPrivilegeEscalation == false
          - runAsNonRoot == true (pod level or every container)
          - runAsUser != 0 wherever set
          - seccompProfile.type RuntimeDefault or Localhost (pod level or every container)
          - containers[*].securityContext.capabilities.drop contains ALL
project   - runAsUser and runAsGroup >= 10000 (outside common image UIDs), fsGroup >= 10000,
            readOnlyRootFilesystem == true, automountServiceAccountToken == false
and the `models` namespace enforces the restricted level through its Pod Security admission label.
"""

from __future__ import annotations

from typing import Any

from tests.synth import SynthResult
from tests.templates import all_applied_manifests

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}
ALLOWED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
FORBIDDEN_CONTEXT_FIELDS = ("seLinuxOptions", "appArmorProfile", "procMount", "sysctls", "windowsOptions")
MIN_ID = 10000


def pod_specs(synth: SynthResult, stage: str) -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for manifest in all_applied_manifests(synth, stage):
        if manifest["kind"] in WORKLOAD_KINDS:
            spec = manifest["spec"] if manifest["kind"] == "Pod" else manifest["spec"]["template"]["spec"]
            specs.append((f"{manifest['kind']}/{manifest['metadata']['name']}", spec))
    return specs


def violations(spec: dict[str, Any]) -> list[str]:
    found = []
    pod = spec.get("securityContext", {})
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            found.append(f"spec.{field} is true")
    for field in FORBIDDEN_CONTEXT_FIELDS:
        if field in pod:
            found.append(f"securityContext.{field} is set")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUME_TYPES:
            found.append(f"volume {volume['name']} uses {sorted(kinds - ALLOWED_VOLUME_TYPES)}")
    if spec.get("automountServiceAccountToken") is not False:
        found.append("automountServiceAccountToken is not false")
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        if pod.get(key, MIN_ID) < MIN_ID:
            found.append(f"pod securityContext.{key} {pod[key]} < {MIN_ID}")
    containers = spec.get("containers", []) + spec.get("initContainers", [])
    for container in containers:
        name = container["name"]
        context = container.get("securityContext", {})
        if context.get("privileged"):
            found.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation is not false")
        capabilities = context.get("capabilities", {})
        if capabilities.get("add"):  # restricted would allow NET_BIND_SERVICE; vLLM needs none
            found.append(f"{name}: adds capabilities {capabilities.get('add')}")
        if "ALL" not in capabilities.get("drop", []):
            found.append(f"{name}: does not drop ALL capabilities")
        if not (context.get("runAsNonRoot") or pod.get("runAsNonRoot")):
            found.append(f"{name}: runAsNonRoot is not true")
        for key in ("runAsUser", "runAsGroup"):
            value = context.get(key, pod.get(key))
            if value is None or value < MIN_ID:
                found.append(f"{name}: {key} {value} is not >= {MIN_ID}")
        seccomp = context.get("seccompProfile", pod.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name}: seccompProfile.type is {seccomp}")
        if context.get("readOnlyRootFilesystem") is not True:
            found.append(f"{name}: root filesystem is writable")
        for field in FORBIDDEN_CONTEXT_FIELDS:
            if field in context:
                found.append(f"{name}: securityContext.{field} is set")
        for port in container.get("ports", []):
            if port.get("hostPort"):
                found.append(f"{name}: hostPort {port['hostPort']}")
    return found


def test_every_workload_pod_is_restricted(synth: SynthResult, stage: str) -> None:
    specs = pod_specs(synth, stage)
    assert len(specs) == sum(len(model.versions) for model in synth.configs[stage].models)
    for name, spec in specs:
        assert violations(spec) == [], name


def test_the_checker_catches_each_kind_of_violation(synth: SynthResult) -> None:
    _, spec = pod_specs(synth, "dev")[0]
    broken = {
        **spec,
        "hostNetwork": True,
        "volumes": [*spec["volumes"], {"name": "host", "hostPath": {"path": "/"}}],
        "containers": [
            {
                **spec["containers"][0],
                "securityContext": {
                    "privileged": True,
                    "capabilities": {"add": ["SYS_ADMIN"]},
                    "runAsUser": 0,
                },
                "ports": [{"containerPort": 8000, "hostPort": 8000}],
            }
        ],
        "securityContext": {},
    }
    messages = "\n".join(violations(broken))
    for expected in (
        "hostNetwork",
        "hostPath",
        "privileged",
        "allowPrivilegeEscalation",
        "adds capabilities",
        "drop ALL",
        "runAsNonRoot",
        "runAsUser 0",
        "seccompProfile",
        "root filesystem",
        "hostPort",
    ):
        assert expected in messages, expected


def test_models_namespace_enforces_restricted(synth: SynthResult, stage: str) -> None:
    (namespace,) = [m for m in all_applied_manifests(synth, stage) if m["kind"] == "Namespace"]
    assert namespace["metadata"]["name"] == "models"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
