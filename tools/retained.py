"""What stays behind when a stage's stacks are deleted, read from its synthesised templates.

Usage: .venv/bin/python -m tools.retained cdk.out <stage>   (make destroy STAGE=<stage> runs it first)

CloudFormation keeps every resource with `DeletionPolicy: Retain` (keys, buckets, logs, dead-letter
queues: data a teardown must not lose by accident). They keep costing until deleted by hand; the
cost notes are list prices in us-east-1 (aws.amazon.com/kms/pricing, /s3/pricing,
/cloudwatch/pricing), an estimate, not a bill.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.synth_summary import resources, stage_templates

COST_NOTES = {
    "AWS::KMS::Key": "$1/month per key (+$1/month per yearly rotation) until scheduled for deletion "
    "(7-30 days' wait, no charge while pending)",
    "AWS::S3::Bucket": "storage at S3 rates (Standard about $0.023/GB-month) until emptied and deleted",
    "AWS::Logs::LogGroup": "stored logs at about $0.03/GB-month until they expire or the group is deleted",
    "AWS::SQS::Queue": "no charge while idle (SQS bills requests)",
    "AWS::SecretsManager::Secret": "$0.40/month per secret until deleted (7-30 days' recovery window)",
}

# Created by AWS services or by CDK outside the stage's templates, so the list above cannot show them.
OUTSIDE_THE_STACKS = (
    "load balancers and target groups the AWS Load Balancer Controller made for the Ingress, if the "
    "controller was gone before the Ingress (look for the tag elbv2.k8s.aws/cluster=<cluster name>)",
    "the CDK bootstrap stack CDKToolkit (staging bucket, ECR repository): shared by every CDK app in the "
    "account and region; keep it while you deploy anything with CDK",
)


@dataclass(frozen=True)
class Retained:
    stack: str
    kind: str
    path: str
    detail: str


def detail(resource: dict[str, Any]) -> str:
    """When the kept data expires by itself, from the resource's retention or lifecycle settings."""
    properties = resource.get("Properties", {})
    if "RetentionInDays" in properties:
        return f"logs expire after {properties['RetentionInDays']} days"
    if "MessageRetentionPeriod" in properties:
        return f"messages expire after {int(properties['MessageRetentionPeriod']) // 86400} days"
    rules = properties.get("LifecycleConfiguration", {}).get("Rules", [])
    expiry = [rule["ExpirationInDays"] for rule in rules if "ExpirationInDays" in rule]
    if expiry:
        return f"objects expire after {min(expiry)} days"
    if resource["Type"] == "AWS::S3::Bucket":
        return "objects never expire"
    return ""


def retained_resources(outdir: Path, stage: str) -> list[Retained]:
    """Every resource of `stage` that CloudFormation keeps on stack deletion, in stack order."""
    templates = stage_templates(outdir)
    if stage not in templates:
        raise SystemExit(f"{outdir}: no stage {stage!r}; synthesised: {', '.join(templates)}")
    return [
        Retained(
            stack=stack,
            kind=resource["Type"],
            path=resource.get("Metadata", {}).get("aws:cdk:path", logical_id).removesuffix("/Resource"),
            detail=detail(resource),
        )
        for stack, template in sorted(templates[stage].items())
        for logical_id, resource in resources(template).items()
        if resource.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate")
    ]


def main(outdir: Path, stage: str) -> int:
    retained = retained_resources(outdir, stage)
    print(f"Deleting stage {stage} keeps {len(retained)} resources (their DeletionPolicy retains them):")
    for item in retained:
        print(f"  {item.kind:<22} {item.path}" + (f"  ({item.detail})" if item.detail else ""))
    print("What they cost until you delete them (list prices, us-east-1, an estimate):")
    for kind in sorted({item.kind for item in retained}):
        count = sum(item.kind == kind for item in retained)
        print(f"  {count} x {kind}: {COST_NOTES.get(kind, 'see its pricing page')}")
    keys = sum(item.kind == "AWS::KMS::Key" for item in retained)
    print(f"  fixed part: about ${keys}/month for the keys; the rest grows with the data stored")
    print("Also outside the stacks:")
    for note in OUTSIDE_THE_STACKS:
        print(f"  {note}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m tools.retained <cdk.out> <stage>")
    sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
