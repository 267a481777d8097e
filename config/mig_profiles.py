"""MIG profiles each GPU model offers, with how many devices of that profile one GPU holds when it is
split into that profile only (the "all-<profile>" layouts).

Source: NVIDIA mig-parted, deployments/systemd/config-default.yaml (commit bd7160f4, 2026-08-21),
entries for A100-SXM4-40GB (device id 0x20B010DE), A100-SXM4-80GB (0x20B210DE), H100-SXM5-80GB
(0x233010DE) and H200-141GB (0x233510DE); cross-checked with the MIG user guide's "Supported MIG
Profiles". `tools/check_mig_profiles.py <config-default.yaml>` re-checks this table against that file.
Keys are the GPU models of config/catalog.py; "+me" (media extension) profiles are left out.
"""

from __future__ import annotations

import re

MIG_PROFILES: dict[str, dict[str, int]] = {
    "A100-40GB": {"1g.5gb": 7, "1g.10gb": 4, "2g.10gb": 3, "3g.20gb": 2, "4g.20gb": 1, "7g.40gb": 1},
    "A100-80GB": {"1g.10gb": 7, "1g.20gb": 4, "2g.20gb": 3, "3g.40gb": 2, "4g.40gb": 1, "7g.80gb": 1},
    "H100": {"1g.10gb": 7, "1g.20gb": 4, "2g.20gb": 3, "3g.40gb": 2, "4g.40gb": 1, "7g.80gb": 1},
    "H200": {"1g.18gb": 7, "1g.35gb": 4, "2g.35gb": 3, "3g.71gb": 2, "4g.71gb": 1, "7g.141gb": 1},
}

MIG_DEVICE_IDS = {
    "A100-40GB": "0x20B010DE",
    "A100-80GB": "0x20B210DE",
    "H100": "0x233010DE",
    "H200": "0x233510DE",
}

PROFILE = re.compile(r"^(?P<slices>[1-7])g\.(?P<memory>\d+)gb$")


def mig_profile_memory_gb(profile: str) -> int:
    """Memory of a MIG device as its profile name states it (e.g. 3g.40gb -> 40)."""
    match = PROFILE.match(profile)
    if match is None:
        raise ValueError(f"{profile!r} is not a MIG profile name such as 3g.40gb")
    return int(match["memory"])
