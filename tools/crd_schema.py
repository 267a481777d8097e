"""Write a custom resource's openAPIV3Schema as a JSON Schema file for tests/schemas/.

Usage: python -m tools.crd_schema <crd.yaml> <version> <out.json> --source <url> [--provider aws]

<crd.yaml> is the CustomResourceDefinition as published upstream (a file you downloaded from
<url>). Descriptions are dropped; `additionalProperties: false` is added to every object that
lists its properties (and does not preserve unknown fields), to mirror server-side strict field
validation: unknown fields are errors rather than silently pruned.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml


def strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items() if key != "description"}
    open_object = "additionalProperties" in schema or schema.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in schema and not open_object:
        out["additionalProperties"] = False
    return out


def crd_schema(crd: dict[str, Any], version: str, source: str, provider: str | None = None) -> dict[str, Any]:
    served = {entry["name"]: entry for entry in crd["spec"]["versions"]}
    if version not in served or not served[version].get("served"):
        raise SystemExit(f"{crd['metadata']['name']} does not serve {version}; it has {sorted(served)}")
    schema = strict(served[version]["schema"]["openAPIV3Schema"])
    schema.setdefault("properties", {}).pop("status", None)
    # metadata is checked by the API server's own rules, not by the CRD schema.
    schema["properties"]["metadata"] = {"type": "object"}
    if provider is not None:
        # A SecretStore's schema lists every provider; keep the one we use (the rest are rejected).
        providers = schema["properties"]["spec"]["properties"]["provider"]["properties"]
        schema["properties"]["spec"]["properties"]["provider"]["properties"] = {provider: providers[provider]}
    kind = crd["spec"]["names"]["kind"]
    group = crd["spec"]["group"]
    comment = (
        f"openAPIV3Schema of the {kind} CRD ({group}/{version}) from {source}, written by "
        "tools/crd_schema.py: descriptions and status dropped, additionalProperties false on objects"
        + (f", providers other than {provider} dropped." if provider else ".")
    )
    return {"$comment": comment, **schema}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("crd", type=Path)
    parser.add_argument("version")
    parser.add_argument("out", type=Path)
    parser.add_argument("--source", required=True, help="where the CRD file came from (kept in $comment)")
    parser.add_argument("--provider", help="keep only this spec.provider entry (SecretStore kinds)")
    args = parser.parse_args()
    crd = yaml.safe_load(args.crd.read_text())
    args.out.write_text(
        json.dumps(crd_schema(crd, args.version, args.source, args.provider), indent=1, sort_keys=True) + "\n"
    )


if __name__ == "__main__":
    main()
