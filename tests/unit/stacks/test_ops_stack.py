"""OpsStack: the Spot interruption handler and the off-hours scaler, property by property."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from config.operations import RebalanceAction
from constructs_lib.powertools_layer import POWERTOOLS_LAYER_VERSION
from contract.events import REBALANCE_RECOMMENDATION, SPOT_INTERRUPTION_WARNING
from contract.kubernetes import NODE_GROUP_LABEL
from contract.telemetry import METRICS_NAMESPACE, OFFHOURS_SCALER_SERVICE, SPOT_INTERRUPTION_SERVICE
from lambdas.offhours_scaler.records import RESTORE_TAG
from stacks.ops import rbac
from stacks.ops.offhours_scaler import deployments_in_scope
from tests.synth import SynthResult
from tests.templates import as_list, manifests_by_id, one, referenced_id, resources, role_statements

SPOT_HANDLER = "lambdas/spot_interruption/handler.handler"
SCALER_HANDLER = "lambdas/offhours_scaler/handler.handler"
Resource = dict[str, Any]


# Template navigation ---------------------------------------------------------------------------


def _template(synth: SynthResult, stage: str, stack: str = "Ops") -> dict[str, Any]:
    template: dict[str, Any] = synth.templates[stage][stack]
    return template


def _resource(synth: SynthResult, stage: str, value: Any) -> Resource:
    """The Ops resource behind a Ref or GetAtt."""
    resource: Resource = _template(synth, stage)["Resources"][referenced_id(value)]
    return resource


def _of_type(synth: SynthResult, stage: str, type_: str) -> dict[str, Resource]:
    return resources(_template(synth, stage), type_)


def _function(synth: SynthResult, stage: str, handler: str) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical_id, resource["Properties"])
        for logical_id, resource in _of_type(synth, stage, "AWS::Lambda::Function").items()
        if resource["Properties"]["Handler"] == handler
    ]
    return found


def _imported(synth: SynthResult, stage: str, value: Any) -> tuple[str, Resource, str]:
    """Follow a cross-stack reference: (stack display name, the resource, the attribute or 'Ref')."""
    output = value["Fn::GetStackOutput"]
    stack = output["StackName"].removeprefix(f"{stage}-")
    exported = _template(synth, stage, stack)["Outputs"][output["OutputName"]]["Value"]
    attribute = exported["Fn::GetAtt"][1] if "Fn::GetAtt" in exported else "Ref"
    return stack, _template(synth, stage, stack)["Resources"][referenced_id(exported)], attribute


def _key_id(synth: SynthResult, stage: str) -> str:
    return one(_template(synth, stage), "AWS::KMS::Key")[0]


def _role_statements(synth: SynthResult, stage: str, role_arn: Any) -> list[dict[str, Any]]:
    return role_statements(_template(synth, stage), role_arn)


def _manifests(synth: SynthResult, stage: str) -> list[list[dict[str, Any]]]:
    """The objects of each manifest resource of the Ops stack."""
    return list(manifests_by_id(_template(synth, stage)).values())


def _manifest_with(synth: SynthResult, stage: str, kind: str) -> list[dict[str, Any]]:
    (found,) = [objects for objects in _manifests(synth, stage) if kind in {o["kind"] for o in objects}]
    return found


def _object(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [obj for obj in objects if obj["kind"] == kind]
    return found


# Spot interruption: events -----------------------------------------------------------------------


def test_event_rules_match_exactly_the_two_ec2_detail_types(synth: SynthResult, stage: str) -> None:
    rules = _of_type(synth, stage, "AWS::Events::Rule").values()
    patterns = sorted(json.dumps(rule["Properties"]["EventPattern"], sort_keys=True) for rule in rules)
    expected = [SPOT_INTERRUPTION_WARNING]
    if synth.configs[stage].spot.rebalance_action is not RebalanceAction.IGNORE:
        expected.append(REBALANCE_RECOMMENDATION)
    assert patterns == sorted(
        json.dumps({"detail-type": [detail], "source": ["aws.ec2"]}, sort_keys=True) for detail in expected
    )
    assert SPOT_INTERRUPTION_WARNING == "EC2 Spot Instance Interruption Warning"
    assert REBALANCE_RECOMMENDATION == "EC2 Instance Rebalance Recommendation"


def test_event_targets_retry_briefly_then_dead_letter(synth: SynthResult, stage: str) -> None:
    spot_id, _ = _function(synth, stage, SPOT_HANDLER)
    for rule in _of_type(synth, stage, "AWS::Events::Rule").values():
        (target,) = rule["Properties"]["Targets"]
        assert referenced_id(target["Arn"]) == spot_id
        assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 120, "MaximumRetryAttempts": 2}
        queue = _resource(synth, stage, target["DeadLetterConfig"]["Arn"])
        assert queue["Type"] == "AWS::SQS::Queue"


def test_spot_function_failures_dead_letter_within_the_notice(synth: SynthResult, stage: str) -> None:
    """EventBridge invokes asynchronously: the function's own retries need an age limit and a DLQ."""
    spot_id, _ = _function(synth, stage, SPOT_HANDLER)
    (config,) = [
        c["Properties"]
        for c in _of_type(synth, stage, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": spot_id}
    ]
    assert config["MaximumEventAgeInSeconds"] == 120
    assert config["MaximumRetryAttempts"] == 2
    (rule, *_) = _of_type(synth, stage, "AWS::Events::Rule").values()
    rule_dlq = rule["Properties"]["Targets"][0]["DeadLetterConfig"]["Arn"]
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == rule_dlq


# Both functions: runtime, placement, tracing, environment ------------------------------------------


@pytest.mark.parametrize("handler", [SPOT_HANDLER, SCALER_HANDLER])
def test_function_runtime_layer_tracing_and_concurrency(synth: SynthResult, stage: str, handler: str) -> None:
    config = synth.configs[stage]
    _, function = _function(synth, stage, handler)
    assert function["Runtime"] == "python3.13"
    assert function["Architectures"] == ["arm64"]
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert function["Layers"] == [
        f"arn:aws:lambda:{config.region}:017000801446:layer:"
        f"AWSLambdaPowertoolsPythonV3-python313-arm64:{POWERTOOLS_LAYER_VERSION}"
    ]
    if handler == SPOT_HANDLER:
        assert function["Timeout"] == config.spot.function_timeout_seconds > 120
        assert function["ReservedConcurrentExecutions"] == config.spot.reserved_concurrency
    else:
        assert function["Timeout"] == 300
        assert function["ReservedConcurrentExecutions"] == 1


@pytest.mark.parametrize("handler", [SPOT_HANDLER, SCALER_HANDLER])
def test_function_runs_in_private_subnets_with_https_only_egress(
    synth: SynthResult, stage: str, handler: str
) -> None:
    _, function = _function(synth, stage, handler)
    vpc = function["VpcConfig"]
    subnets = [_imported(synth, stage, subnet) for subnet in vpc["SubnetIds"]]
    assert len(subnets) == len(synth.configs[stage].availability_zones)
    for stack, subnet, _ in subnets:
        assert stack == "Network"
        assert {"Key": "aws-cdk:subnet-type", "Value": "Private"} in subnet["Properties"]["Tags"]
    (group_ref,) = vpc["SecurityGroupIds"]
    group = _resource(synth, stage, group_ref)["Properties"]
    assert group["SecurityGroupEgress"] == [
        {
            "CidrIp": "0.0.0.0/0",
            "Description": "HTTPS to the EKS API and AWS APIs",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]
    assert "SecurityGroupIngress" not in group
    (ingress,) = [
        rule["Properties"]
        for rule in _of_type(synth, stage, "AWS::EC2::SecurityGroupIngress").values()
        if rule["Properties"]["SourceSecurityGroupId"]
        == {"Fn::GetAtt": [referenced_id(group_ref), "GroupId"]}
    ]
    assert (ingress["FromPort"], ingress["ToPort"], ingress["IpProtocol"]) == (443, 443, "tcp")
    assert _imported(synth, stage, ingress["GroupId"])[2] == "ClusterSecurityGroupId"


@pytest.mark.parametrize("handler", [SPOT_HANDLER, SCALER_HANDLER])
def test_cluster_coordinates_come_from_the_cluster(synth: SynthResult, stage: str, handler: str) -> None:
    _, function = _function(synth, stage, handler)
    variables = function["Environment"]["Variables"]
    expected = {
        "CLUSTER_NAME": "Ref",
        "CLUSTER_ENDPOINT": "Endpoint",
        "CLUSTER_CA_DATA": "CertificateAuthorityData",
    }
    for name, attribute in expected.items():
        stack, resource, got = _imported(synth, stage, variables[name])
        assert (stack, resource["Type"], got) == ("Cluster", "AWS::EKS::Cluster", attribute), name


@pytest.mark.parametrize("handler", [SPOT_HANDLER, SCALER_HANDLER])
def test_environment_encrypted_and_logs_kept_encrypted(synth: SynthResult, stage: str, handler: str) -> None:
    _, function = _function(synth, stage, handler)
    assert function["KmsKeyArn"] == {"Fn::GetAtt": [_key_id(synth, stage), "Arn"]}
    assert (
        _template(synth, stage)["Resources"][_key_id(synth, stage)]["Properties"]["EnableKeyRotation"] is True
    )
    log_group = _resource(synth, stage, function["LoggingConfig"]["LogGroup"])["Properties"]
    assert log_group["RetentionInDays"] == synth.configs[stage].log_retention_days
    stack, key, _ = _imported(synth, stage, log_group["KmsKeyId"])
    assert (stack, key["Type"]) == ("Network", "AWS::KMS::Key")


def test_spot_environment_passes_the_rebalance_action(synth: SynthResult, stage: str) -> None:
    _, function = _function(synth, stage, SPOT_HANDLER)
    variables = function["Environment"]["Variables"]
    assert variables["REBALANCE_ACTION"] == synth.configs[stage].spot.rebalance_action.value
    assert set(variables) == {
        "CLUSTER_NAME",
        "CLUSTER_ENDPOINT",
        "CLUSTER_CA_DATA",
        "REBALANCE_ACTION",
        "POWERTOOLS_METRICS_NAMESPACE",
    }


@pytest.mark.parametrize("handler", [SPOT_HANDLER, SCALER_HANDLER])
def test_metrics_namespace_is_set_where_the_alarms_look(synth: SynthResult, stage: str, handler: str) -> None:
    _, function = _function(synth, stage, handler)
    assert function["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE


def test_rejected_spot_events_raise_an_alarm(synth: SynthResult, stage: str) -> None:
    alarms = resources(synth.templates[stage]["Ops"], "AWS::CloudWatch::Alarm")
    (alarm,) = [a["Properties"] for lid, a in alarms.items() if "RejectedEventsAlarm" in lid]
    assert (alarm["Namespace"], alarm["MetricName"]) == (METRICS_NAMESPACE, "RejectedEvents")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": SPOT_INTERRUPTION_SERVICE}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert alarm["TreatMissingData"] == "notBreaching"


def test_drain_incomplete_alarm_watches_failed_and_pending_pods(synth: SynthResult, stage: str) -> None:
    (alarm,) = [
        a["Properties"]
        for a in _of_type(synth, stage, "AWS::CloudWatch::Alarm").values()
        if "Metrics" in a["Properties"]
    ]
    (expression,) = [m for m in alarm["Metrics"] if "Expression" in m]
    assert expression["Expression"] == "failed + pending"
    inputs = {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert set(inputs) == {"failed", "pending"}
    for metric_id, stat in inputs.items():
        assert stat["Metric"] == {
            "Namespace": METRICS_NAMESPACE,
            "MetricName": f"Pods_{metric_id}",
            "Dimensions": [{"Name": "service", "Value": SPOT_INTERRUPTION_SERVICE}],
        }
        assert stat["Stat"] == "Sum"
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert alarm["TreatMissingData"] == "notBreaching"


def test_scaler_environment_names_the_deployments_and_node_groups_in_scope(
    synth: SynthResult, stage: str
) -> None:
    config = synth.configs[stage]
    _, function = _function(synth, stage, SCALER_HANDLER)
    variables = function["Environment"]["Variables"]
    assert variables["MODEL_NAMESPACE"] == "models"
    assert variables["DEPLOYMENTS"].split(",") == [
        f"{model.id}-{version.name}" for model in config.offhours_models for version in model.versions
    ]
    assert variables["FLOOR_REPLICAS"] == str(config.offhours.floor_replicas)
    assert variables["FLOOR_NODES"] == str(config.offhours.floor_nodes)
    assert float(variables["OFF_HOURS_PER_NIGHT"]) == config.offhours.hours_off_per_night
    names = variables["NODE_GROUPS"]
    references = names["Fn::Join"][1] if "Fn::Join" in names else [names]
    groups = [_imported(synth, stage, ref) for ref in references]
    assert {attribute for _, _, attribute in groups} == {"NodegroupName"}
    assert [group["Properties"]["Labels"][NODE_GROUP_LABEL] for _, group, _ in groups] == [
        group.name for group in config.offhours_node_groups
    ]


# IAM --------------------------------------------------------------------------------------------


def test_spot_role_allows_only_what_the_handler_calls(synth: SynthResult, stage: str) -> None:
    _, function = _function(synth, stage, SPOT_HANDLER)
    statements = _role_statements(synth, stage, function["Role"])
    granted = {
        action: statement["Resource"] for statement in statements for action in as_list(statement["Action"])
    }
    key = {"Fn::GetAtt": [_key_id(synth, stage), "Arn"]}
    (rule, *_) = _of_type(synth, stage, "AWS::Events::Rule").values()
    dlq = rule["Properties"]["Targets"][0]["DeadLetterConfig"]["Arn"]
    assert granted == {
        "ec2:DescribeInstances": "*",  # no resource-level permissions exist for it
        "xray:PutTraceSegments": "*",  # nor for X-Ray
        "xray:PutTelemetryRecords": "*",
        "sqs:SendMessage": dlq,
        "kms:Decrypt": key,
        "kms:GenerateDataKey": key,
    }
    assert all(statement["Effect"] == "Allow" and "Condition" not in statement for statement in statements)


def test_scaler_role_is_scoped_to_the_node_groups_in_scope(synth: SynthResult, stage: str) -> None:
    config = synth.configs[stage]
    _, function = _function(synth, stage, SCALER_HANDLER)
    statements = _role_statements(synth, stage, function["Role"])
    granted = {action: statement for statement in statements for action in as_list(statement["Action"])}
    assert set(granted) == {
        "eks:DescribeNodegroup",
        "eks:UpdateNodegroupConfig",
        "eks:TagResource",
        "eks:UntagResource",
        "scheduler:CreateSchedule",
        "scheduler:UpdateSchedule",
        "iam:PassRole",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "sqs:SendMessage",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    }
    for action in (
        "eks:DescribeNodegroup",
        "eks:UpdateNodegroupConfig",
        "eks:TagResource",
        "eks:UntagResource",
    ):
        resources = granted[action]["Resource"]
        resources = resources if isinstance(resources, list) else [resources]
        groups = [_imported(synth, stage, resource) for resource in resources]
        assert {attribute for _, _, attribute in groups} == {"Arn"}, action
        assert sorted(g["Properties"]["Labels"][NODE_GROUP_LABEL] for _, g, _ in groups) == sorted(
            group.name for group in config.offhours_node_groups
        ), action
    for action in ("eks:TagResource", "eks:UntagResource"):
        assert granted[action]["Condition"] == {"ForAllValues:StringEquals": {"aws:TagKeys": [RESTORE_TAG]}}
    for action in ("eks:DescribeNodegroup", "eks:UpdateNodegroupConfig"):
        assert "Condition" not in granted[action]


def test_no_wildcard_actions_and_only_vpc_access_managed_policy(synth: SynthResult, stage: str) -> None:
    for statement in (
        statement
        for policy in _of_type(synth, stage, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ):
        assert not any("*" in action for action in as_list(statement["Action"])), statement
        if statement["Resource"] == "*":
            assert set(as_list(statement["Action"])) <= {
                "ec2:DescribeInstances",
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
            }
    for handler in (SPOT_HANDLER, SCALER_HANDLER):
        _, function = _function(synth, stage, handler)
        role = _resource(synth, stage, function["Role"])["Properties"]
        assert json.dumps(role["ManagedPolicyArns"]).count("arn:") == 1
        assert "service-role/AWSLambdaVPCAccessExecutionRole" in json.dumps(role["ManagedPolicyArns"])
        assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
            "Service": "lambda.amazonaws.com"
        }


# Kubernetes access ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("handler", "group"),
    [(SPOT_HANDLER, rbac.SPOT_INTERRUPTION_GROUP), (SCALER_HANDLER, rbac.OFFHOURS_SCALER_GROUP)],
)
def test_access_entry_maps_the_role_to_one_kubernetes_group(
    synth: SynthResult, stage: str, handler: str, group: str
) -> None:
    _, function = _function(synth, stage, handler)
    (entry,) = [
        e["Properties"]
        for e in _of_type(synth, stage, "AWS::EKS::AccessEntry").values()
        if e["Properties"]["PrincipalArn"] == function["Role"]
    ]
    assert entry["Type"] == "STANDARD"
    assert entry["KubernetesGroups"] == [group]
    assert "AccessPolicies" not in entry  # RBAC alone decides what the group may do
    assert _imported(synth, stage, entry["ClusterName"])[1]["Type"] == "AWS::EKS::Cluster"


def test_spot_rbac_is_exactly_nodes_pods_evictions_and_events(synth: SynthResult, stage: str) -> None:
    objects = _manifest_with(synth, stage, "ClusterRole")
    role, binding = _object(objects, "ClusterRole"), _object(objects, "ClusterRoleBinding")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "patch"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": rbac.SPOT_INTERRUPTION_GROUP}
    ]


def test_scaler_rbac_stays_in_the_model_namespace(synth: SynthResult, stage: str) -> None:
    objects = _manifest_with(synth, stage, "Role")
    assert {obj["kind"] for obj in objects} == {"Role", "RoleBinding"}
    role, binding = _object(objects, "Role"), _object(objects, "RoleBinding")
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "models"
    assert role["rules"] == [
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "patch"]},
        # Pausing KEDA is an annotation patch on the models' ScaledObjects; no create, no delete.
        {"apiGroups": ["keda.sh"], "resources": ["scaledobjects"], "verbs": ["get", "patch"]},
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": rbac.OFFHOURS_SCALER_GROUP}
    ]


def test_ops_deploys_after_serving_which_owns_the_model_namespace(synth: SynthResult, stage: str) -> None:
    stage_stacks = synth.stages[stage]
    assert stage_stacks.serving in stage_stacks.ops.dependencies
    namespaces = [
        obj for objects in _manifests(synth, stage) for obj in objects if obj["kind"] == "Namespace"
    ]
    assert namespaces == []


def test_no_other_kubernetes_objects_are_applied(synth: SynthResult, stage: str) -> None:
    kinds = sorted(obj["kind"] for objects in _manifests(synth, stage) for obj in objects)
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]


# Off-hours schedules ----------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["scale_down", "scale_up"])
def test_schedule_runs_the_configured_cron_in_the_stage_time_zone(
    synth: SynthResult, stage: str, action: str
) -> None:
    offhours = synth.configs[stage].offhours
    cron = offhours.scale_down_cron if action == "scale_down" else offhours.scale_up_cron
    scaler_id, _ = _function(synth, stage, SCALER_HANDLER)
    (schedule,) = [
        s["Properties"]
        for s in _of_type(synth, stage, "AWS::Scheduler::Schedule").values()
        if json.loads(s["Properties"]["Target"]["Input"]) == {"action": action}
    ]
    assert schedule["ScheduleExpression"] == f"cron({cron})"
    assert schedule["ScheduleExpressionTimezone"] == offhours.timezone
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["State"] == "ENABLED"
    target = schedule["Target"]
    assert referenced_id(target["Arn"]) == scaler_id
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 3}
    queue = _resource(synth, stage, target["DeadLetterConfig"]["Arn"])
    assert queue["Type"] == "AWS::SQS::Queue"
    role = _resource(synth, stage, target["RoleArn"])["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    account = synth.configs[stage].account or {"Ref": "AWS::AccountId"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": account}}  # no confused deputy
    statements = _role_statements(synth, stage, target["RoleArn"])
    granted = {
        action: statement["Resource"] for statement in statements for action in as_list(statement["Action"])
    }
    assert set(granted) == {"lambda:InvokeFunction", "sqs:SendMessage", "kms:Decrypt", "kms:GenerateDataKey"}
    assert granted["sqs:SendMessage"] == target["DeadLetterConfig"]["Arn"]


def _schedules_role_and_queue(synth: SynthResult, stage: str) -> tuple[Any, Any]:
    (schedule, *_) = _of_type(synth, stage, "AWS::Scheduler::Schedule").values()
    target = schedule["Properties"]["Target"]
    return target["RoleArn"], target["DeadLetterConfig"]["Arn"]


def test_scale_ups_book_their_readiness_check_like_the_schedules(synth: SynthResult, stage: str) -> None:
    """The one-time check runs as the schedules' role, into their DLQ, in a group of its own."""
    _, function = _function(synth, stage, SCALER_HANDLER)
    variables = function["Environment"]["Variables"]
    assert variables["READY_CHECK_MINUTES"] == str(synth.configs[stage].offhours.ready_alarm_minutes)
    (group,) = _of_type(synth, stage, "AWS::Scheduler::ScheduleGroup").values()
    assert variables["READY_CHECK_SCHEDULE_GROUP"] == group["Properties"]["Name"]
    role_arn, queue_arn = _schedules_role_and_queue(synth, stage)
    assert variables["READY_CHECK_ROLE_ARN"] == role_arn
    assert variables["DEAD_LETTER_QUEUE_ARN"] == queue_arn


def test_scaler_may_book_only_its_readiness_check(synth: SynthResult, stage: str) -> None:
    _, function = _function(synth, stage, SCALER_HANDLER)
    statements = _role_statements(synth, stage, function["Role"])
    (book,) = [s for s in statements if "scheduler:CreateSchedule" in as_list(s["Action"])]
    assert sorted(as_list(book["Action"])) == ["scheduler:CreateSchedule", "scheduler:UpdateSchedule"]
    group = function["Environment"]["Variables"]["READY_CHECK_SCHEDULE_GROUP"]
    arn = book["Resource"]  # a literal where the stage names its account, else a join with pseudo refs
    literal = arn if isinstance(arn, str) else "".join(p for p in arn["Fn::Join"][1] if isinstance(p, str))
    assert literal.startswith("arn:")
    assert ":scheduler:" in literal
    assert literal.endswith(f":schedule/{group}/ready-check")
    (pass_role,) = [s for s in statements if "iam:PassRole" in as_list(s["Action"])]
    role_arn, _ = _schedules_role_and_queue(synth, stage)
    assert pass_role["Resource"] == role_arn
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}


def test_not_ready_alarm_fires_on_one_model_without_a_ready_replica(synth: SynthResult, stage: str) -> None:
    (alarm,) = [
        a["Properties"]
        for a in _of_type(synth, stage, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "ModelsNotReady"
    ]
    assert alarm["Namespace"] == METRICS_NAMESPACE
    assert alarm["Dimensions"] == [{"Name": "service", "Value": OFFHOURS_SCALER_SERVICE}]
    assert (alarm["Statistic"], alarm["Period"]) == ("Sum", 300)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert alarm["EvaluationPeriods"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmDescription"].startswith(f"{synth.configs[stage].offhours.ready_alarm_minutes} min")


def test_scaler_function_failures_dead_letter_too(synth: SynthResult, stage: str) -> None:
    """Scheduler invokes asynchronously: a run that raises is retried by Lambda, then dead-lettered."""
    scaler_id, _ = _function(synth, stage, SCALER_HANDLER)
    (config,) = [
        c["Properties"]
        for c in _of_type(synth, stage, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": scaler_id}
    ]
    (schedule, *_) = _of_type(synth, stage, "AWS::Scheduler::Schedule").values()
    assert (
        config["DestinationConfig"]["OnFailure"]["Destination"]
        == (schedule["Properties"]["Target"]["DeadLetterConfig"]["Arn"])
    )
    assert (config["MaximumEventAgeInSeconds"], config["MaximumRetryAttempts"]) == (3600, 2)


# Dead-letter queues and alarms -----------------------------------------------------------------


def test_dead_letter_queues_are_encrypted_tls_only_and_alarmed(synth: SynthResult, stage: str) -> None:
    queues = _of_type(synth, stage, "AWS::SQS::Queue")
    assert len(queues) == 2
    policies = [p["Properties"] for p in _of_type(synth, stage, "AWS::SQS::QueuePolicy").values()]
    alarms = [
        a["Properties"]
        for a in _of_type(synth, stage, "AWS::CloudWatch::Alarm").values()
        if "Dimensions" in a["Properties"]
    ]
    for queue_id, queue in queues.items():
        assert queue["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [_key_id(synth, stage), "Arn"]}
        (policy,) = [p for p in policies if p["Queues"] == [{"Ref": queue_id}]]
        assert {
            "Action": "sqs:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
        } in policy["PolicyDocument"]["Statement"]
        (alarm,) = [
            a
            for a in alarms
            if a["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
        ]
        # Arrivals, not depth: a depth alarm stays in ALARM for 14 days and hides later failures.
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "NumberOfMessagesSent")
        assert (alarm["Statistic"], alarm["Period"]) == ("Sum", 60)
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
        assert alarm["EvaluationPeriods"] == 1


def test_eventbridge_may_encrypt_into_the_dead_letter_queue(synth: SynthResult, stage: str) -> None:
    key = _template(synth, stage)["Resources"][_key_id(synth, stage)]["Properties"]["KeyPolicy"]["Statement"]
    (events,) = [s for s in key if s["Principal"] == {"Service": "events.amazonaws.com"}]
    assert sorted(as_list(events["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
    account = synth.configs[stage].account or {"Ref": "AWS::AccountId"}
    assert events["Condition"] == {"StringEquals": {"aws:SourceAccount": account}}


# The code asset ---------------------------------------------------------------------------------


def _asset_dir(synth: SynthResult, stage: str) -> Path:
    _, function = _function(synth, stage, SPOT_HANDLER)
    return Path(synth.outdir) / f"asset.{function['Code']['S3Key'].removesuffix('.zip')}"


def test_code_asset_holds_only_the_lambdas_and_contract_packages(synth: SynthResult, stage: str) -> None:
    asset = _asset_dir(synth, stage)
    files = sorted(str(path.relative_to(asset)) for path in asset.rglob("*") if path.is_file())
    assert files, "empty asset"
    assert all(name.startswith(("lambdas/", "contract/")) and name.endswith(".py") for name in files), files
    assert "lambdas/spot_interruption/handler.py" in files
    assert "lambdas/offhours_scaler/handler.py" in files
    assert "lambdas/__init__.py" in files
    # The functions import the shared names: the whole contract package travels with them.
    contract_dir = Path(__file__).resolve().parents[3] / "contract"
    assert {f"contract/{path.name}" for path in contract_dir.glob("*.py")} <= set(files)
    assert not any("/tests/" in name or "__pycache__" in name for name in files)


_IMPORT_FROM_ASSET = """
import importlib, json, sys
asset = sys.argv[1]
sys.path.insert(0, asset)
for name in ("lambdas.spot_interruption.handler", "lambdas.offhours_scaler.handler"):
    importlib.import_module(name)
print(json.dumps({name: getattr(module, "__file__", None) for name, module in sys.modules.items()}))
"""


def test_handlers_import_from_the_asset_alone(synth: SynthResult, tmp_path: Path) -> None:
    """Everything the handlers import from this repository is in the asset (isolated interpreter:
    neither the working directory nor PYTHONPATH is on sys.path; site-packages stands for the
    Lambda runtime's boto3 and the Powertools layer)."""
    import subprocess
    import sys

    asset = _asset_dir(synth, "dev").resolve()
    env = {
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "LlmInferenceTest",
    }
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-I", "-c", _IMPORT_FROM_ASSET, str(asset)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    modules: dict[str, str | None] = json.loads(result.stdout)
    repo = Path(__file__).resolve().parents[3]
    packages = {init.parent.name for init in repo.glob("*/__init__.py")}  # lambdas, contract, config, ...
    ours = {name: file for name, file in modules.items() if name.split(".")[0] in packages}
    assert ours, "nothing imported from the repository"
    outside = {
        name: file for name, file in ours.items() if not file or asset not in Path(file).resolve().parents
    }
    assert not outside, outside
    assert {"contract.telemetry", "contract.events", "contract.kubernetes"} <= set(ours)


def test_deployment_names_follow_the_serving_contract(synth: SynthResult) -> None:
    assert deployments_in_scope(synth.configs["staging"].models) == ["llama-3-1-8b-v1", "llama-3-1-8b-v2"]


def test_applied_kubernetes_objects_are_schema_valid(synth: SynthResult, stage: str) -> None:
    version = synth.configs[stage].cluster.kubernetes_version
    for objects in _manifests(synth, stage):
        for obj in objects:
            # strict: unknown fields are errors too (a misspelt key would otherwise be dropped).
            kubernetes_validate.validate(obj, version, strict=True)
