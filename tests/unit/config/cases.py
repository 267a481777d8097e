"""Bad stage files, one per rule: each is a stage file, an edit, and fragments the message must contain.

Shared by the config tests (messages) and the app test (a one-line message, no traceback).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"


def stage_data(stage: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CONFIG_DIR / f"{stage}.yaml").read_text())
    return copy.deepcopy(data)


@dataclass(frozen=True)
class Case:
    id: str
    stage: str
    mutate: Callable[[dict[str, Any]], Any]
    expected: tuple[str, ...]


def _model(d: dict[str, Any], index: int = 0) -> dict[str, Any]:
    model: dict[str, Any] = d["models"][index]
    return model


def _version(d: dict[str, Any], model: int = 0) -> dict[str, Any]:
    version: dict[str, Any] = _model(d, model)["versions"][0]
    return version


def _engine(d: dict[str, Any], model: int = 0) -> dict[str, Any]:
    engine: dict[str, Any] = _version(d, model)["engine"]
    return engine


def _group(d: dict[str, Any], index: int = 0) -> dict[str, Any]:
    group: dict[str, Any] = d["cluster"]["gpu_node_groups"][index]
    return group


def _versions(d: dict[str, Any], count: int) -> None:
    first = _version(d)
    versions = []
    for index in range(count):
        version = copy.deepcopy(first)
        version.update(name=f"v{index + 1}", weight=100 // count + (100 % count if index == 0 else 0))
        versions.append(version)
    _model(d)["versions"] = versions


def _second_model(d: dict[str, Any], model_id: str, version: str) -> dict[str, Any]:
    model = copy.deepcopy(_model(d))
    model["id"] = model_id
    model["versions"][0]["name"] = version
    d["models"].append(model)
    return d


CERT = "arn:aws:acm:{region}:{account}:certificate/00000000-0000-4000-8000-000000000000"

CASES = (
    # Where the stage deploys.
    Case(
        "prod-without-account",
        "prod",
        lambda d: d.pop("account"),
        ("stage 'prod' has no account", "allowed: account and region set"),
    ),
    Case(
        "az-not-in-region",
        "dev",
        lambda d: d.update(availability_zones=["us-east-1a", "us-east-10b"]),
        ("availability_zones ['us-east-10b'] are not in region us-east-1", "e.g. us-east-1a"),
    ),
    Case(
        "az-not-in-account",
        "staging",
        lambda d: d.update(availability_zones=["us-east-1a", "us-east-1g"]),
        ("['us-east-1g'] are not zones of account 222222222222 in us-east-1", "cdk.context.json"),
    ),
    Case(
        "region-missing-from-context",
        "staging",
        lambda d: d.update(region="eu-west-1", availability_zones=["eu-west-1a", "eu-west-1b"]),
        (
            "cdk.context.json has no key 'availability-zones:account=222222222222:region=eu-west-1'",
            "aws ec2 describe-availability-zones --region eu-west-1",
        ),
    ),
    # Network.
    Case(
        "vpc-too-small-for-subnets",
        "dev",
        lambda d: d["network"].update(vpc_cidr="10.10.0.0/18"),
        (
            "network.vpc_cidr 10.10.0.0/18 cannot hold the subnets of 2 availability zones",
            "allowed: a /17 or larger VPC",
        ),
    ),
    Case(
        "vpc-cidr-host-bits",
        "dev",
        lambda d: d["network"].update(vpc_cidr="10.10.0.1/16"),
        ("network.vpc_cidr", "has host bits set", "allowed: 10.10.0.0/16"),
    ),
    Case(
        "public-cidr-host-bits",
        "dev",
        lambda d: d["cluster"].update(public_access_cidrs=["203.0.113.5/24"]),
        (
            "cluster.public_access_cidrs",
            "'203.0.113.5/24' has host bits set",
            "allowed: 203.0.113.0/24",
            "203.0.113.5/32 for that single address",
        ),
    ),
    Case(
        "public-cidr-effectively-open",
        "dev",
        lambda d: d["cluster"].update(public_access_cidrs=["0.0.0.0/1"]),
        ("cluster.public_access_cidrs", "as good as open", "/8 or longer"),
    ),
    Case(
        "waf-allow-list-effectively-open",
        "dev",
        lambda d: d["waf"].update(allow_cidrs=["64.0.0.0/2"]),
        ("waf.allow_cidrs", "'64.0.0.0/2' covers 1,073,741,824 addresses, which is as good as open"),
    ),
    # Generated names and ALB limits.
    Case(
        "annotation-key-too-long",
        "dev",
        lambda d: _model(d).update(id="m" * 56),
        (
            "models[0]",
            "alb.ingress.kubernetes.io/actions." + "m" * 56,
            "64-character name",
            "an id of at most 55 characters",
        ),
    ),
    Case(
        "generated-names-collide",
        "dev",
        lambda d: (_second_model(d, "llama-3-1-8b-v1", "x"), _version(d).update(name="v1-x")),
        ("both generate the Kubernetes name 'llama-3-1-8b-v1-x'",),
    ),
    Case(
        "too-many-versions-for-alb",
        "dev",
        lambda d: _versions(d, 6),
        ("models[0].versions", "6 versions", "at most 5 target groups", "allowed: 1 to 5 versions"),
    ),
    Case(
        "canary-serves-another-model-name",
        "staging",
        lambda d: d["models"][0]["versions"][1].update(served_model_name="llama-3-1-8b-ngram"),
        ("models[0].versions", "versions serve different served_model_name values", "v1=llama-3-1-8b"),
    ),
    Case(
        "served-name-with-whitespace",
        "dev",
        lambda d: _version(d).update(served_model_name="llama 3"),
        ("models[0].versions[0].served_model_name", "'llama 3' is not a model name", "without whitespace"),
    ),
    Case(
        "two-models-one-served-name",
        "prod",
        lambda d: _version(d, 1).update(served_model_name="llama-3-1-8b"),
        ("models[llama-3-1-70b] and models[llama-3-1-8b] both serve served_model_name 'llama-3-1-8b'",),
    ),
    # GPUs.
    Case(
        "tensor-parallel-not-power-of-two",
        "prod",
        lambda d: _version(d, 1).update(gpus_per_replica=3),
        ("models[1].versions[0].gpus_per_replica", "3 GPUs per replica", "allowed: 1, 2, 4, 8"),
    ),
    Case(
        "max-model-len-above-context",
        "dev",
        lambda d: _engine(d).update(max_model_len=200000),
        ("engine.max_model_len 200000 exceeds the 131072-token context of llama-3-1-8b",),
    ),
    Case(
        "unquantised-70b-on-4-l40s",
        "prod",
        lambda d: (
            _version(d, 1).pop("weights_gib"),
            _engine(d, 1).update(quantization="none", gpu_memory_utilization=0.8),
            _engine(d, 1).pop("speculative"),
        ),
        (
            "models[llama-3-1-70b].versions[v1]: llama-3-1-70b at quantization none",
            "131.5 GiB of weights",
            "5.0 GiB of KV cache",
            "4 x L40S (48 GiB) at gpu_memory_utilization 0.8 gives 153.6 GiB",
        ),
    ),
    Case(
        "kv-cache-does-not-fit",
        "dev",
        lambda d: _engine(d).update(max_model_len=131072, gpu_memory_utilization=0.5),
        ("16.0 GiB of KV cache for one 131072-token sequence", "gives 12.0 GiB"),
    ),
    Case(
        "min-replicas-unschedulable",
        "dev",
        lambda d: (
            _model(d)["autoscaling"].update(min_replicas=2, max_replicas=3, fallback_replicas=2)
            or _group(d).update(max_size=1)
        ),
        ("models[llama-3-1-8b].autoscaling.min_replicas 2 x 1 GPUs", "hold at most 1 replicas"),
    ),
    # vLLM flags.
    Case(
        "extra-args-two-tokens",
        "dev",
        lambda d: _engine(d).update(extra_args=["--max-model-len 4096"]),
        ("holds several arguments in one item", "overrides --max-model-len", "set engine.max_model_len"),
    ),
    Case(
        "extra-args-short-alias",
        "dev",
        lambda d: _engine(d).update(extra_args=["-tp", "2"]),
        ("'-tp' overrides --tensor-parallel-size", "set gpus_per_replica"),
    ),
    Case(
        "extra-args-underscores",
        "dev",
        lambda d: _engine(d).update(extra_args=["--gpu_memory_utilization=0.5"]),
        ("overrides --gpu-memory-utilization", "set engine.gpu_memory_utilization"),
    ),
    Case(
        "extra-args-negated-boolean",
        "dev",
        lambda d: _engine(d).update(extra_args=["--no-enable-prefix-caching"]),
        ("overrides --enable-prefix-caching", "set engine.enable_prefix_caching"),
    ),
    Case(
        "extra-args-optional-generated-flag",
        "dev",
        lambda d: _engine(d).update(extra_args=["--speculative-config", "{}"]),
        ("overrides --speculative-config", "set engine.speculative"),
    ),
    Case(
        "extra-args-json-key-of-generated-flag",
        "staging",
        lambda d: d["models"][0]["versions"][1]["engine"].update(
            extra_args=["--speculative-config.num_speculative_tokens", "8"]
        ),
        ("overrides --speculative-config", "set engine.speculative"),
    ),
    Case(
        "extra-args-flag-generated-from-another-field",
        "dev",
        lambda d: _engine(d).update(extra_args=["--shutdown_timeout=5"]),
        ("'--shutdown_timeout=5' overrides --shutdown-timeout", "(set max_request_seconds)"),
    ),
    Case(
        "extra-args-abbreviation",
        "dev",
        lambda d: _engine(d).update(extra_args=["--max-model=4096"]),
        ("'--max-model=4096' abbreviates --max-model-len",),
    ),
    # Off-hours schedules.
    Case(
        "equivalent-crons",
        "dev",
        lambda d: d["offhours"].update(scale_down_cron="0 7 ? * 2-6 *", scale_up_cron="00 07 ? * MON-FRI *"),
        ("are the same schedule (they fire at the same times)",),
    ),
    Case(
        "bad-day-name",
        "dev",
        lambda d: d["offhours"].update(scale_down_cron="0 19 ? * MON-FRY *"),
        ("offhours.scale_down_cron", "'FRY' is not a day of week name", "SUN-SAT"),
    ),
    Case(
        "bad-month-name",
        "dev",
        lambda d: d["offhours"].update(scale_down_cron="0 19 ? JANUARY MON *"),
        ("offhours.scale_down_cron", "month field 'JANUARY'"),
    ),
    Case(
        "lower-case-day-names",
        "dev",
        lambda d: d["offhours"].update(scale_down_cron="0 19 ? * mon-fri *"),
        ("day-of-week field 'mon-fri' is not valid; write day and month names in upper case",),
    ),
    Case(
        "past-year",
        "dev",
        lambda d: d["offhours"].update(scale_down_cron="0 19 ? * MON-FRI 2020"),
        ("year field '2020' is in the past, so the schedule never runs",),
    ),
    # Certificates and domains.
    Case(
        "certificate-in-another-region",
        "prod",
        lambda d: d["ingress"].update(
            certificate_arn=CERT.format(region="us-east-1", account="333333333333")
        ),
        ("certificate_arn is in us-east-1 but the ALB is in us-west-2",),
    ),
    Case(
        "certificate-of-another-account",
        "prod",
        lambda d: d["ingress"].update(
            certificate_arn=CERT.format(region="us-west-2", account="999999999999")
        ),
        ("belongs to account 999999999999 but the stage deploys to 333333333333",),
    ),
    Case(
        "malformed-certificate-arn",
        "prod",
        lambda d: d["ingress"].update(certificate_arn="arn:aws:acm:us-west-2:333333333333:certificate/abc"),
        ("ingress.certificate_arn", "is not an ACM certificate ARN", "certificate/<uuid>"),
    ),
    Case(
        "malformed-domain",
        "prod",
        lambda d: d["ingress"].update(domain="LLM.example.com"),
        ("ingress.domain", "'LLM.example.com' is not a DNS domain", "bad labels: ['LLM']"),
    ),
    # Tags, ARNs and instance types.
    Case(
        "tag-aws-prefix",
        "dev",
        lambda d: d["tags"].update({"AWS:owner": "me"}),
        ("tags", "'AWS:owner' starts with 'aws:', which AWS reserves"),
    ),
    Case(
        "tag-value-too-long",
        "dev",
        lambda d: d["tags"].update(owner="x" * 257),
        ("tags", "has 257 characters; allowed: 1 to 256"),
    ),
    Case(
        "iam-arn-short-account",
        "dev",
        lambda d: d["cluster"].update(admin_principal_arns=["arn:aws:iam::12345678901:role/Admin"]),
        ("cluster.admin_principal_arns", "has account '12345678901'", "exactly 12 digits"),
    ),
    Case(
        "system-instance-type-typo",
        "dev",
        lambda d: d["cluster"]["system_node_group"].update(instance_types=["m7i.larg"]),
        ("cluster.system_node_group.instance_types", "m7i.larg is not in the catalogue", "size one of large"),
    ),
    Case(
        "system-instance-type-arm",
        "dev",
        lambda d: d["cluster"]["system_node_group"].update(instance_types=["m7g.large"]),
        ("m7g.large is an Arm (Graviton) type",),
    ),
    # Production safety rules.
    Case(
        # With the ALB routing by header (the one mode allowed without a domain), only the safety rule
        # stands between prod and clear text.
        "prod-internet-facing-without-tls",
        "prod",
        lambda d: d["ingress"].update(domain=None, certificate_arn=None, routing="header"),
        ("production stage", "safety rule internet-facing-without-tls", "safety_overrides"),
    ),
    Case(
        # prod as shipped routes through the gateway, where every model's prompts and the key share one
        # listener: that mode refuses an internet-facing ALB without TLS on its own, in any stage.
        "prod-model-routing-internet-facing-without-tls",
        "prod",
        lambda d: d["ingress"].update(domain=None, certificate_arn=None),
        (
            "ingress.routing 'model' with ingress.scheme 'internet-facing' needs ingress.domain and "
            "ingress.certificate_arn",
        ),
    ),
    Case(
        "prod-model-only-on-spot",
        "prod",
        lambda d: _version(d).update(node_groups=["a10g-spot"]),
        ("safety rule all-gpu-capacity-on-spot: models[llama-3-1-8b] runs on ['a10g-spot']",),
    ),
    Case(
        "prod-hugging-face-source",
        "prod",
        lambda d: _version(d).update(source="meta-llama/Llama-3.1-8B-Instruct"),
        ("safety rule hugging-face-source", "'meta-llama/Llama-3.1-8B-Instruct'"),
    ),
    Case(
        "prod-offhours-floor-zero",
        "prod",
        lambda d: d["offhours"].update(floor_replicas=0),
        ("safety rule offhours-zero-floor",),
    ),
    Case(
        "override-without-reason",
        "prod",
        lambda d: d.update(safety_overrides={"offhours-zero-floor": "ok"}),
        ("safety_overrides", "reason 'ok' is too short"),
    ),
    # Usability.
    Case(
        "boolean-for-integer",
        "dev",
        lambda d: _model(d)["autoscaling"].update(min_replicas=True),
        ("autoscaling.min_replicas", "true is a boolean; allowed: a number"),
    ),
    Case(
        "misspelt-key",
        "dev",
        lambda d: d["network"].update(nat_gatways=2),
        ("network.nat_gatways", "unknown key; did you mean 'nat_gateways'?"),
    ),
)
