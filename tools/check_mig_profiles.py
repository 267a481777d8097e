"""Check config/mig_profiles.py against NVIDIA mig-parted's default configuration.

Usage: python -m tools.check_mig_profiles <path to mig-parted deployments/systemd/config-default.yaml>
(https://github.com/NVIDIA/mig-parted). Prints each mismatch and exits 1 if there is any.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from config.mig_profiles import MIG_DEVICE_IDS, MIG_PROFILES


def count_for(configs: dict[str, list[dict[str, Any]]], profile: str, device_id: str) -> int | None:
    """Devices per GPU in the all-<profile> layout for this device, or None if it has none."""
    for entry in configs.get(f"all-{profile}", []):
        filters = entry.get("device-filter")
        if filters is None or device_id in filters:
            devices: dict[str, int] = entry.get("mig-devices", {})
            return devices.get(profile)
    return None


def main(path: Path) -> int:
    configs = yaml.safe_load(path.read_text())["mig-configs"]
    problems = [
        f"{gpu} {profile}: table says {count}, mig-parted says {found}"
        for gpu, profiles in MIG_PROFILES.items()
        for profile, count in profiles.items()
        if (found := count_for(configs, profile, MIG_DEVICE_IDS[gpu])) != count
    ]
    print("\n".join(problems) or "config/mig_profiles.py matches mig-parted")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
