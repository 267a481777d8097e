"""GPU instance types the project knows, with the facts validation and planning rely on.

GPU counts, GPU models and GPU memory are from the Amazon EC2 accelerated computing instance
pages (https://aws.amazon.com/ec2/instance-types/g5/, /g6/, /g6e/, /p4/, /p5/).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class GpuInstanceType:
    name: str
    gpu_model: str
    gpus: int
    gpu_memory_gib: int  # per GPU
    vcpus: int
    memory_gib: int

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]


def _family(
    gpu_model: str, gpu_memory_gib: int, sizes: list[tuple[str, int, int, int]]
) -> dict[str, GpuInstanceType]:
    return {
        name: GpuInstanceType(name, gpu_model, gpus, gpu_memory_gib, vcpus, memory)
        for name, gpus, vcpus, memory in sizes
    }


GPU_INSTANCE_TYPES: dict[str, GpuInstanceType] = {
    **_family(
        "A10G",
        24,
        [
            ("g5.xlarge", 1, 4, 16),
            ("g5.2xlarge", 1, 8, 32),
            ("g5.4xlarge", 1, 16, 64),
            ("g5.8xlarge", 1, 32, 128),
            ("g5.16xlarge", 1, 64, 256),
            ("g5.12xlarge", 4, 48, 192),
            ("g5.24xlarge", 4, 96, 384),
            ("g5.48xlarge", 8, 192, 768),
        ],
    ),
    **_family(
        "L4",
        24,
        [
            ("g6.xlarge", 1, 4, 16),
            ("g6.2xlarge", 1, 8, 32),
            ("g6.4xlarge", 1, 16, 64),
            ("g6.8xlarge", 1, 32, 128),
            ("g6.16xlarge", 1, 64, 256),
            ("g6.12xlarge", 4, 48, 192),
            ("g6.24xlarge", 4, 96, 384),
            ("g6.48xlarge", 8, 192, 768),
        ],
    ),
    **_family(
        "L40S",
        48,
        [
            ("g6e.xlarge", 1, 4, 32),
            ("g6e.2xlarge", 1, 8, 64),
            ("g6e.4xlarge", 1, 16, 128),
            ("g6e.8xlarge", 1, 32, 256),
            ("g6e.16xlarge", 1, 64, 512),
            ("g6e.12xlarge", 4, 48, 384),
            ("g6e.24xlarge", 4, 96, 768),
            ("g6e.48xlarge", 8, 192, 1536),
        ],
    ),
    **_family("A100-40GB", 40, [("p4d.24xlarge", 8, 96, 1152)]),
    **_family("A100-80GB", 80, [("p4de.24xlarge", 8, 96, 1152)]),
    **_family("H100", 80, [("p5.48xlarge", 8, 192, 2048)]),
}


SYSTEM_INSTANCE_FAMILIES = ("m5", "m6i", "m6a", "m7i", "m7a", "c6i", "c7i", "r6i", "r7i")
SYSTEM_INSTANCE_SIZES = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")
"""x86_64 types (the system group runs the AL2023 x86_64 standard AMI) for add-ons and controllers;
every family listed offers every size listed (https://aws.amazon.com/ec2/instance-types/m7i/ and the
pages of the other families)."""
SYSTEM_INSTANCE_TYPES = frozenset(
    f"{family}.{size}" for family in SYSTEM_INSTANCE_FAMILIES for size in SYSTEM_INSTANCE_SIZES
)
ARM_FAMILY = re.compile(r"^[a-z]+\d+g[a-z]*$")
"""Graviton families carry a 'g' after the generation (m7g, c7gn, r8g); g5/g6 are GPU families."""
