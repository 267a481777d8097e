"""Issue #14 item 2: the VPC CNI enforces NetworkPolicies, and model pods admit HTTP only from the
load balancer and scraper subnets, never from the pod range."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import cdk8s
import pytest

from config.subnets import EDGE, PRIVATE, PUBLIC, load_balancer_source_cidrs, subnet_cidrs
from contract.serving import PLACEHOLDERS
from k8s_charts import model_gateway as gw
from k8s_charts.model_gateway import ENVOY_SERVICE
from k8s_charts.stage_charts import build_stage_charts
from tests.synth import SynthResult
from tests.templates import all_applied_manifests, applied_charts, chart_manifests, resources
from tests.variants import routed_by_alb


def subnets_by_group(synth: SynthResult, stage: str) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for resource in resources(synth.templates[stage]["Network"], "AWS::EC2::Subnet").values():
        tags = {tag["Key"]: tag["Value"] for tag in resource["Properties"]["Tags"]}
        groups.setdefault(tags["aws-cdk:subnet-name"], []).append({**resource["Properties"], "tags": tags})
    return groups


def test_vpc_cni_add_on_turns_network_policy_enforcement_on(synth: SynthResult, stage: str) -> None:
    (addon,) = [
        resource
        for resource in resources(synth.templates[stage]["Platform"], "AWS::EKS::Addon").values()
        if resource["Properties"]["AddonName"] == "vpc-cni"
    ]
    # A string "true": the add-on's schema (the aws-vpc-cni chart's values) types it as a string.
    assert json.loads(addon["Properties"]["ConfigurationValues"]) == {"enableNetworkPolicy": "true"}


def test_derived_layout_matches_the_synthesised_vpc(synth: SynthResult, stage: str) -> None:
    config = synth.configs[stage]
    expected = subnet_cidrs(config.network.vpc_cidr, len(config.availability_zones))
    actual = {
        name: sorted(s["CidrBlock"] for s in subnets)
        for name, subnets in subnets_by_group(synth, stage).items()
    }
    assert actual == {name: sorted(cidrs) for name, cidrs in expected.items()}


def test_load_balancer_tags_put_internal_albs_in_the_edge_subnets(synth: SynthResult, stage: str) -> None:
    groups = subnets_by_group(synth, stage)
    assert all(s["tags"].get("kubernetes.io/role/internal-elb") == "1" for s in groups[EDGE.name])
    assert all(s["tags"].get("kubernetes.io/role/elb") == "1" for s in groups[PUBLIC.name])
    assert not any("kubernetes.io/role/internal-elb" in s["tags"] for s in groups[PRIVATE.name])
    # Isolated: no route to a NAT gateway, and never selected as a node or Lambda subnet.
    assert all(s["MapPublicIpOnLaunch"] is False for s in groups[EDGE.name])


def test_scraper_runs_in_the_edge_subnets(synth: SynthResult, stage: str) -> None:
    (scraper,) = resources(synth.templates[stage]["Observability"], "AWS::APS::Scraper").values()
    subnet_ids = json.dumps(scraper["Properties"]["Source"]["EksConfiguration"]["SubnetIds"])
    assert subnet_ids.count("EdgeSubnet") == len(synth.configs[stage].availability_zones)
    assert "PrivateSubnet" not in subnet_ids


def _admitted_cidrs(policy: dict[str, Any]) -> list[str]:
    return [
        peer["ipBlock"]["cidr"]
        for rule in policy["spec"]["ingress"]
        for peer in rule["from"]
        if "ipBlock" in peer
    ]


def test_model_pods_admit_http_only_from_edge_sources(synth: SynthResult, stage: str) -> None:
    config = synth.configs[stage]
    zones = len(config.availability_zones)
    layout = subnet_cidrs(config.network.vpc_cidr, zones)
    pod_ranges = [ipaddress.ip_network(cidr) for cidr in layout[PRIVATE.name]]
    # Whatever the ALB targets admits the ALB's subnets (public ones too when internet-facing) and the
    # scraper's; in `model` routing the ALB targets the gateway, and the model pods, which then check
    # no key, admit only the scraper's edge subnets (and the gateway's pods, by label).
    alb_sources = load_balancer_source_cidrs(
        config.network.vpc_cidr, zones, internet_facing=config.ingress.scheme == "internet-facing"
    )
    scraper_sources = load_balancer_source_cidrs(config.network.vpc_cidr, zones, internet_facing=False)
    model_routing = config.ingress.routing_mode == "model"
    policies = [m for m in all_applied_manifests(synth, stage) if m["kind"] == "NetworkPolicy"]
    model_policies = [p for p in policies if p["metadata"]["name"] != "default-deny"]
    gateway_policies = [p for p in model_policies if p["metadata"]["name"] == ENVOY_SERVICE]
    # One per model version, plus the gateway's in `model` routing (its pods take the ALB's traffic).
    assert len(gateway_policies) == (1 if model_routing else 0)
    assert len(model_policies) == sum(len(model.versions) for model in config.models) + len(gateway_policies)
    for policy in model_policies:
        cidrs = _admitted_cidrs(policy)
        if policy in gateway_policies:
            # The gateway's pods: the ALB's subnets on the listener and readiness ports, the scraper's
            # (edge) subnets alone on the metrics ports.
            by_ports = {
                tuple(port["port"] for port in rule["ports"]): [
                    peer["ipBlock"]["cidr"] for peer in rule["from"] if "ipBlock" in peer
                ]
                for rule in policy["spec"]["ingress"]
                if any("ipBlock" in peer for peer in rule["from"])
            }
            assert by_ports == {
                (gw.LISTENER_PORT, gw.READINESS_PORT): alb_sources,
                (gw.STATS_PORT, gw.EXTPROC_METRICS_PORT): scraper_sources,
            }
        else:
            assert cidrs == (scraper_sources if model_routing else alb_sources), policy["metadata"]["name"]
        assert config.network.vpc_cidr not in cidrs
        for cidr in cidrs:
            assert not any(ipaddress.ip_network(cidr).overlaps(pods) for pods in pod_ranges), cidr


def test_behind_an_internet_facing_alb_routing_by_host_model_pods_admit_the_public_subnets() -> None:
    """No shipped stage has this any more (prod routes by `model`): prod's copy with host routing."""
    config = routed_by_alb("prod")
    assert (config.ingress.routing_mode, config.ingress.scheme) == ("host", "internet-facing")
    zones = len(config.availability_zones)
    layout = subnet_cidrs(config.network.vpc_cidr, zones)
    charts = build_stage_charts(cdk8s.Testing.app(), config=config, values=PLACEHOLDERS)
    assert charts.gateway is None
    assert charts.endpoints
    for chart in charts.endpoints.values():
        (policy,) = [m for m in chart_manifests(chart) if m["kind"] == "NetworkPolicy"]
        assert _admitted_cidrs(policy) == layout[PUBLIC.name] + layout[EDGE.name]


@pytest.mark.parametrize(("internet_facing", "groups"), [(False, [EDGE]), (True, [PUBLIC, EDGE])])
def test_public_subnets_are_admitted_only_for_an_internet_facing_alb(
    internet_facing: bool, groups: list[Any]
) -> None:
    layout = subnet_cidrs("10.30.0.0/16", 3)
    expected = [cidr for group in groups for cidr in layout[group.name]]
    assert load_balancer_source_cidrs("10.30.0.0/16", 3, internet_facing=internet_facing) == expected


def test_layout_follows_cdk_alignment_for_three_zones() -> None:
    assert subnet_cidrs("10.30.0.0/16", 3) == {
        "Public": ["10.30.0.0/24", "10.30.1.0/24", "10.30.2.0/24"],
        "Private": ["10.30.32.0/19", "10.30.64.0/19", "10.30.96.0/19"],
        "Edge": ["10.30.128.0/24", "10.30.129.0/24", "10.30.130.0/24"],
    }


def test_models_namespace_denies_everything_by_default(synth: SynthResult, stage: str) -> None:
    (_namespace, default_deny) = applied_charts(synth, stage)["models-namespace"]
    assert default_deny["kind"] == "NetworkPolicy"
    assert default_deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_interface_endpoints_admit_only_this_accounts_principals(synth: SynthResult, stage: str) -> None:
    account = synth.configs[stage].account or {"Ref": "AWS::AccountId"}
    endpoints = [
        e
        for e in resources(synth.templates[stage]["Network"], "AWS::EC2::VPCEndpoint").values()
        if e["Properties"].get("VpcEndpointType") == "Interface"
    ]
    assert len(endpoints) == 5
    for endpoint in endpoints:
        (statement,) = endpoint["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Allow"
        assert statement["Condition"] == {"StringEquals": {"aws:PrincipalAccount": account}}
        service = endpoint["Properties"]["ServiceName"]
        assert statement["Action"].split(":")[0] in json.dumps(service), service
