"""MIG partitioning at boot: launch-template user data that splits every GPU of a MIG node group into
its configured profile before kubelet (and so the device plugin) starts.

Why at boot and not NVIDIA's k8s-mig-manager DaemonSet: see docs/gpu-sharing.md, "How MIG devices are
created". Sources of the facts used here:
- EKS AL2023 AMI (awslabs/amazon-eks-ami 81fec2e8, templates/al2023/runtime/rootfs/etc/systemd/system/
  nodeadm-run.service): kubelet is started by ``nodeadm-run.service``, ordered ``After=cloud-final``,
  so a user-data shell script finishes before kubelet starts. The NVIDIA variant installs the driver,
  ``nvidia-smi``, ``nvidia-persistenced`` and ``nvidia-fabricmanager`` (provisioners/
  install-nvidia-driver.sh) but not nvidia-mig-parted.
- NVIDIA mig-parted (bd7160f4), deployments/systemd/nvidia-mig-manager.service: its own boot unit runs
  ``After=nvidia-persistenced.service nvidia-fabricmanager.service``; GPU instances do not survive a
  reboot, so the layout is applied on every boot, which this unit does too.
- The layout is mig-parted's ``all-<profile>``: every GPU in MIG mode with only that profile, as many
  devices as fit (config/mig_profiles.py, checked against mig-parted's config-default.yaml).
- Managed node groups merge launch-template user data only in MIME multi-part form (EKS user guide,
  "Customizing managed nodes with launch templates").
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2

from config.catalog import GPU_INSTANCE_TYPES
from config.cluster import GpuNodeGroupConfig
from config.gpu_sharing import SharingMode
from config.mig_profiles import MIG_PROFILES

UNIT = "llm-inference-mig-layout.service"
SCRIPT = "/usr/local/sbin/llm-inference-mig-layout"
# Kubelet is started by nodeadm-run on AL2023; naming kubelet too keeps the order if that changes.
KUBELET_UNITS = ("nodeadm-run.service", "kubelet.service")
NVIDIA_UNITS = ("nvidia-kmod-load.service", "nvidia-persistenced.service", "nvidia-fabricmanager.service")


def mig_layout_name(group: GpuNodeGroupConfig) -> str | None:
    """mig-parted's name for the group's layout (``all-3g.40gb``), or None for a group without MIG."""
    if group.sharing.mode is not SharingMode.MIG:
        return None
    assert group.sharing.mig_profile is not None
    return f"all-{group.sharing.mig_profile}"


def devices_per_gpu(group: GpuNodeGroupConfig) -> int:
    """MIG devices of the group's profile on one GPU. Config checks the profile exists on every type of
    the group; one script serves them all, so their counts must agree."""
    profile = group.sharing.mig_profile
    assert profile is not None
    counts = {MIG_PROFILES[GPU_INSTANCE_TYPES[name].gpu_model][profile] for name in group.instance_types}
    if len(counts) != 1:
        raise ValueError(
            f"cluster.gpu_node_groups[{group.name}].sharing.mig_profile {profile!r} gives a different number "
            f"of devices per GPU on {list(group.instance_types)}; allowed: instance types whose GPUs split "
            "the same way"
        )
    return counts.pop()


def layout_script(group: GpuNodeGroupConfig) -> str:
    """The per-boot script: MIG mode on, old instances gone, ``all-<profile>`` created on each GPU."""
    assert group.sharing.mig_profile is not None
    instances = ",".join([group.sharing.mig_profile] * devices_per_gpu(group))
    return "\n".join(
        [
            "#!/bin/bash",
            f"# MIG layout {mig_layout_name(group)} for node group {group.name}; runs before kubelet.",
            "set -euo pipefail",
            "mig_disabled() {",
            "  nvidia-smi --query-gpu=mig.mode.current --format=csv,noheader | grep -qv Enabled",
            "}",
            "nvidia-smi -mig 1",
            "# Hopper enables MIG mode at once; Ampere (A100) only after a GPU reset, which needs every",
            "# client off the GPUs: nothing but nvidia-persistenced runs before kubelet.",
            "if mig_disabled; then",
            "  systemctl stop nvidia-persistenced.service || true",
            "  nvidia-smi --gpu-reset",
            "  systemctl start nvidia-persistenced.service || true",
            "fi",
            'if mig_disabled; then echo "MIG mode is not enabled on every GPU" >&2; exit 1; fi',
            "# GPU instances do not survive a reboot; clear any left and create the layout on every GPU.",
            "nvidia-smi mig -dci || true",
            "nvidia-smi mig -dgi || true",
            "for gpu in $(nvidia-smi --query-gpu=index --format=csv,noheader); do",
            f'  nvidia-smi mig -i "$gpu" -cgi {instances} -C',
            "done",
            "nvidia-smi -L",
        ]
    )


def layout_unit(group: GpuNodeGroupConfig) -> str:
    """A oneshot unit enabled for every boot, ordered after the driver and before kubelet."""
    return "\n".join(
        [
            "[Unit]",
            f"Description=MIG layout {mig_layout_name(group)} before kubelet starts",
            f"After={' '.join(NVIDIA_UNITS)}",
            f"Before={' '.join(KUBELET_UNITS)}",
            "",
            "[Service]",
            "Type=oneshot",
            "RemainAfterExit=true",
            f"ExecStart={SCRIPT}",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
        ]
    )


def mig_boot_commands(group: GpuNodeGroupConfig) -> list[str]:
    """User-data commands that install the script and the unit, then run it for this first boot."""
    return [
        "set -euo pipefail",
        f"cat > {SCRIPT} <<'LLM_INFERENCE_EOF'",
        layout_script(group),
        "LLM_INFERENCE_EOF",
        f"chmod 0755 {SCRIPT}",
        f"cat > /etc/systemd/system/{UNIT} <<'LLM_INFERENCE_EOF'",
        layout_unit(group),
        "LLM_INFERENCE_EOF",
        "systemctl daemon-reload",
        f"systemctl enable {UNIT}",
        f"systemctl start {UNIT}",
    ]


def mig_user_data(group: GpuNodeGroupConfig) -> ec2.MultipartUserData | None:
    """MIME multi-part user data for a MIG group (EKS adds its nodeadm part); None for any other group,
    whose launch template then stays without user data."""
    if mig_layout_name(group) is None:
        return None
    script = ec2.UserData.for_linux()
    script.add_commands(*mig_boot_commands(group))
    user_data = ec2.MultipartUserData()
    user_data.add_part(ec2.MultipartBody.from_user_data(script, "text/x-shellscript"))
    return user_data
