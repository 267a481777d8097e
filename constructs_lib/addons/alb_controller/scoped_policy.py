"""The controller's published policy, narrowed where its calls can be narrowed.

The published policy leaves several mutating statements on Resource "*" without a condition. Here:
- security-group ingress changes: only security groups in this stage's VPC (ec2:Vpc);
- security-group creation: only in this stage's VPC;
- listener and rule calls, listener certificates and SetWebAcl: only load balancers, listeners
  and rules whose name starts with `k8s-`, which is how controller v2.8.2 names every ALB it
  creates unless an Ingress sets alb.ingress.kubernetes.io/load-balancer-name (ours do not;
  pkg/ingress/model_build_load_balancer.go at v2.8.2);
- wafv2 association: only the stage's web ACL; WAF Classic and Shield calls are removed, because
  the Helm values turn those add-ons off (enableWaf/enableShield, flags --enable-waf/--enable-shield).
What stays broad is listed in BROAD, which the cdk-nag acknowledgement repeats.
"""

from __future__ import annotations

import copy
from typing import Any

ELB = "arn:aws:elasticloadbalancing:*:*"
CONTROLLER_LOAD_BALANCERS = [
    f"{ELB}:loadbalancer/app/k8s-*/*",
    f"{ELB}:listener/app/k8s-*/*/*",
    f"{ELB}:listener-rule/app/k8s-*/*/*/*",
]
SECURITY_GROUPS = "arn:aws:ec2:*:*:security-group/*"
LISTENER_ACTIONS = {
    "elasticloadbalancing:CreateListener",
    "elasticloadbalancing:DeleteListener",
    "elasticloadbalancing:CreateRule",
    "elasticloadbalancing:DeleteRule",
    "elasticloadbalancing:ModifyListener",
    "elasticloadbalancing:ModifyRule",
    "elasticloadbalancing:AddListenerCertificates",
    "elasticloadbalancing:RemoveListenerCertificates",
    "elasticloadbalancing:SetWebAcl",
}
INGRESS_ACTIONS = {"ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"}
DISABLED_PREFIXES = ("waf-regional:", "shield:")
WEB_ACL_WRITES = {"wafv2:AssociateWebACL", "wafv2:DisassociateWebACL"}
BROAD = (
    "Describe*/Get*/List* reads of EC2, ELB, ACM, IAM server certificates, Cognito and WAFv2 "
    "(no resource-level scoping)",
    "CreateLoadBalancer/CreateTargetGroup on '*' (names are generated), only with the "
    "elbv2.k8s.aws/cluster request tag",
    "changes and deletes of load balancers, target groups and security groups on '*', only where "
    "the elbv2.k8s.aws/cluster resource tag exists",
    "RegisterTargets/DeregisterTargets and tagging on any target group, load balancer or listener ARN "
    "(as published)",
)


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def scoped_policy(published: dict[str, Any], *, vpc_arn: str, web_acl_arn: str) -> dict[str, Any]:
    """The published document with the unconditioned '*' statements narrowed (see module doc)."""
    statements: list[dict[str, Any]] = []
    for original in copy.deepcopy(published["Statement"]):
        actions = [a for a in _actions(original) if not a.startswith(DISABLED_PREFIXES)]
        broad = original.get("Resource") == "*" and "Condition" not in original
        if not broad:
            statements.append(original)
            continue
        rest = []
        for action in actions:
            if action in INGRESS_ACTIONS:
                statements.append(
                    {
                        "Effect": "Allow",
                        "Action": action,
                        "Resource": SECURITY_GROUPS,
                        "Condition": {"ArnEquals": {"ec2:Vpc": vpc_arn}},
                    }
                )
            elif action == "ec2:CreateSecurityGroup":
                statements.append(
                    {"Effect": "Allow", "Action": action, "Resource": [vpc_arn, SECURITY_GROUPS]}
                )
            elif action in LISTENER_ACTIONS:
                statements.append(
                    {"Effect": "Allow", "Action": action, "Resource": CONTROLLER_LOAD_BALANCERS}
                )
            elif action in WEB_ACL_WRITES:
                statements.append(
                    {
                        "Effect": "Allow",
                        "Action": action,
                        "Resource": [web_acl_arn, CONTROLLER_LOAD_BALANCERS[0]],
                    }
                )
            else:
                rest.append(action)
        if rest:
            statements.append({**original, "Action": rest})
    return {**published, "Statement": statements}
