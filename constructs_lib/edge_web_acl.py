"""A regional WAF web ACL for the model ALB: allow-list, per-IP rate limit, AWS managed rules, logging."""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from constructs_lib.retention import retention

# Prompts routinely exceed the common rule set's 8 KB body limit; that rule only counts.
BODY_SIZE_RULE = "SizeRestrictions_BODY"


def greater_than_regex(limit: int) -> str:
    """A regex matching exactly the decimal integers greater than `limit` (no leading zeros).

    WAF cannot compare numbers, and it inspects at most the first 8 KB of a body; a regex on the
    Content-Length header is how a larger body is refused before the ALB forwards it.
    """
    digits = str(limit)
    longer = rf"[1-9][0-9]{{{len(digits)},}}"  # more digits than the limit
    same_length = [
        f"{digits[:i]}[{int(digit) + 1}-9][0-9]{{{len(digits) - i - 1}}}"
        for i, digit in enumerate(digits)
        if digit != "9"
    ]
    return "^(" + "|".join([longer, *same_length]) + ")$"


def _visibility(metric: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
    )


def _managed_rule(
    name: str, priority: int, *, count_rules: tuple[str, ...] = ()
) -> wafv2.CfnWebACL.RuleProperty:
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                vendor_name="AWS",
                name=name,
                rule_action_overrides=[
                    wafv2.CfnWebACL.RuleActionOverrideProperty(
                        name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                    )
                    for rule in count_rules
                ]
                or None,
            )
        ),
        visibility_config=_visibility(name),
    )


class EdgeWebAcl(Construct):
    """Exposes ``web_acl`` and ``log_group``.

    Props:
        name_prefix: metric and log-group name stem, e.g. llm-inference-prod.
        rate_limit_per_5_minutes: requests per client IP per 5 minutes before blocking.
        allow_cidrs: when non-empty, every other client IP is blocked. Default: no allow-list.
        logs_key: KMS key of the WAF log group.
        log_retention_days: retention of the WAF log group.
        max_body_bytes: requests declaring a larger Content-Length are blocked.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name_prefix: str,
        rate_limit_per_5_minutes: int,
        allow_cidrs: list[str],
        logs_key: kms.IKey,
        log_retention_days: int,
        max_body_bytes: int,
    ) -> None:
        super().__init__(scope, id_)
        rules: list[wafv2.CfnWebACL.RuleProperty] = []
        if allow_cidrs:
            allow_list = wafv2.CfnIPSet(
                self,
                "AllowList",
                scope="REGIONAL",
                ip_address_version="IPV4",
                addresses=list(allow_cidrs),
                description="Clients allowed to reach the model endpoints",
            )
            # Block outside the list; allowed clients still pass the rate limit and managed rules.
            rules.append(
                wafv2.CfnWebACL.RuleProperty(
                    name="BlockOutsideAllowList",
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        not_statement=wafv2.CfnWebACL.NotStatementProperty(
                            statement=wafv2.CfnWebACL.StatementProperty(
                                ip_set_reference_statement=wafv2.CfnWebACL.IPSetReferenceStatementProperty(
                                    arn=allow_list.attr_arn
                                )
                            )
                        )
                    ),
                    visibility_config=_visibility("BlockOutsideAllowList"),
                )
            )
        rules += [
            wafv2.CfnWebACL.RuleProperty(
                name="RateLimitPerClientIp",
                priority=1,
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        aggregate_key_type="IP", limit=rate_limit_per_5_minutes, evaluation_window_sec=300
                    )
                ),
                visibility_config=_visibility("RateLimitPerClientIp"),
            ),
            _managed_rule("AWSManagedRulesCommonRuleSet", 2, count_rules=(BODY_SIZE_RULE,)),
            _managed_rule("AWSManagedRulesKnownBadInputsRuleSet", 3),
            # The common rule set's body-size rule counts only (prompts exceed 8 KB); this blocks
            # what no prompt of the stage's longest context can need.
            wafv2.CfnWebACL.RuleProperty(
                name="BodyLargerThanAnyPrompt",
                priority=4,
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    regex_match_statement=wafv2.CfnWebACL.RegexMatchStatementProperty(
                        regex_string=greater_than_regex(max_body_bytes),
                        field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(
                            single_header={"Name": "content-length"}
                        ),
                        text_transformations=[
                            wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")
                        ],
                    )
                ),
                visibility_config=_visibility("BodyLargerThanAnyPrompt"),
            ),
        ]
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(name_prefix),
            rules=rules,
        )
        # WAF only logs to groups named aws-waf-logs-*; hence the fixed physical name.
        log_group_name = f"aws-waf-logs-{name_prefix}"
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=log_group_name,
            encryption_key=logs_key,
            retention=retention(log_retention_days),
            # Kept on delete, but not after a failed first create: a leftover group with this fixed
            # name would make the retry fail with "already exists".
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        # WAF wants the log group ARN without the ":*" suffix that LogGroup.log_group_arn carries.
        log_group_arn = Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=log_group_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        logging = wafv2.CfnLoggingConfiguration(
            self,
            "Logging",
            resource_arn=self.web_acl.attr_arn,
            log_destination_configs=[log_group_arn],
            # Bearer tokens and API keys never reach the logs.
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": "authorization"})
            ],
        )
        logging.node.add_dependency(self.log_group)
