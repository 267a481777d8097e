"""The VPC: subnets per AZ tagged for load balancers, NAT per config, endpoints and encrypted flow logs."""

from __future__ import annotations

from aws_cdk.assertions import Match

from tests.synth import SynthResult


def test_nat_gateways_follow_config(synth: SynthResult, stage: str) -> None:
    template = synth.template(stage, "Network")
    template.resource_count_is("AWS::EC2::NatGateway", synth.configs[stage].network.nat_gateways)


def test_subnets_span_the_configured_azs(synth: SynthResult, stage: str) -> None:
    template = synth.template(stage, "Network")
    azs = synth.configs[stage].availability_zones
    template.resource_count_is("AWS::EC2::Subnet", 3 * len(azs))  # public, private (pods), edge
    for az in azs:
        template.has_resource_properties("AWS::EC2::Subnet", {"AvailabilityZone": az})


def test_subnets_are_tagged_for_load_balancers(synth: SynthResult, stage: str) -> None:
    template = synth.template(stage, "Network")
    azs = len(synth.configs[stage].availability_zones)
    for tag, public in (("kubernetes.io/role/elb", True), ("kubernetes.io/role/internal-elb", False)):
        subnets = template.find_resources(
            "AWS::EC2::Subnet",
            {
                "Properties": {
                    "MapPublicIpOnLaunch": public,
                    "Tags": Match.array_with([{"Key": tag, "Value": "1"}]),
                }
            },
        )
        assert len(subnets) == azs, tag


def test_flow_logs_go_to_a_kms_encrypted_log_group(synth: SynthResult, stage: str) -> None:
    template = synth.template(stage, "Network")
    template.has_resource_properties(
        "AWS::EC2::FlowLog", {"TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"}
    )
    template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "KmsKeyId": {"Fn::GetAtt": [Match.string_like_regexp("^LogsKey"), "Arn"]},
            "RetentionInDays": synth.configs[stage].network.flow_logs_retention_days,
        },
    )


def test_logs_key_rotates(synth: SynthResult, stage: str) -> None:
    synth.template(stage, "Network").has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_endpoints_for_private_nodes(synth: SynthResult, stage: str) -> None:
    template = synth.template(stage, "Network")
    endpoints = template.find_resources("AWS::EC2::VPCEndpoint")
    services = {str(endpoint["Properties"]["ServiceName"]) for endpoint in endpoints.values()}
    joined = " ".join(services)
    for service in ("ecr.api", "ecr.dkr", "sts", "logs", "ec2"):
        assert f".{service}" in joined or f"'{service}'" in joined, service
    template.has_resource_properties("AWS::EC2::VPCEndpoint", {"VpcEndpointType": "Gateway"})
    template.resource_count_is("AWS::EC2::VPCEndpoint", 6)
