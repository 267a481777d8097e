"""OpsStack for configurations no stage file uses: rebalance ignored, off-hours disabled.

A small separate app (one stage, no cdk-nag) because no shipped stage has these settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
import yaml

from app import cdk_json_context
from config import parse_stage
from config.loader import CONFIG_DIR
from contract.events import SPOT_INTERRUPTION_WARNING
from stacks.inference_stage import InferenceStage
from tests.templates import resources


@pytest.fixture(scope="module")
def variant_ops(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = yaml.safe_load((CONFIG_DIR / "dev.yaml").read_text())
    data["spot"]["rebalance_action"] = "ignore"
    data["offhours"]["enabled"] = False
    config = parse_stage(data, name="dev", source="variant of config/dev.yaml")
    app = cdk.App(context=cdk_json_context(), outdir=str(Path(tmp_path_factory.mktemp("variant"))))
    stage = InferenceStage(app, "variant", config=config)
    template: dict[str, Any] = stage.synth().get_stack_by_name(stage.ops.stack_name).template
    return template


def test_rebalance_rule_is_left_out_when_ignored(variant_ops: dict[str, Any]) -> None:
    (rule,) = list(resources(variant_ops, "AWS::Events::Rule").values())
    assert rule["Properties"]["EventPattern"] == {
        "detail-type": [SPOT_INTERRUPTION_WARNING],
        "source": ["aws.ec2"],
    }
    (function,) = list(resources(variant_ops, "AWS::Lambda::Function").values())
    assert function["Properties"]["Environment"]["Variables"]["REBALANCE_ACTION"] == "ignore"


def test_no_scaler_schedules_or_rbac_when_offhours_disabled(variant_ops: dict[str, Any]) -> None:
    assert list(resources(variant_ops, "AWS::Scheduler::Schedule").values()) == []
    (function,) = list(resources(variant_ops, "AWS::Lambda::Function").values())
    assert function["Properties"]["Handler"] == "lambdas/spot_interruption/handler.handler"
    manifests = list(resources(variant_ops, "Custom::AWSCDK-EKS-KubernetesResource").values())
    assert len(manifests) == 1
    assert "Namespace" not in manifests[0]["Properties"]["Manifest"]
