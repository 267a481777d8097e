"""Each mistake AWS, Kubernetes, the ALB or vLLM would reject later is refused when the stage loads."""

from __future__ import annotations

import pytest

from config import ConfigError, parse_stage
from config.loader import read_cdk_context
from config.serving import UNKNOWN_MODEL_PROBE
from tests.unit.config.cases import CASES, Case, stage_data


def message_for(case: Case) -> str:
    data = stage_data(case.stage)
    case.mutate(data)
    with pytest.raises(ConfigError) as raised:
        parse_stage(data, name=case.stage, source=f"config/{case.stage}.yaml", cdk_context=read_cdk_context())
    return str(raised.value)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_mistake_is_refused_naming_file_field_and_allowed(case: Case) -> None:
    message = message_for(case)
    assert message.startswith(f"config/{case.stage}.yaml")
    for fragment in case.expected:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


def test_every_case_passes_unmutated() -> None:
    """The cases fail because of their edit: the shipped files they start from load."""
    for stage in {case.stage for case in CASES}:
        parse_stage(
            stage_data(stage), name=stage, source=f"config/{stage}.yaml", cdk_context=read_cdk_context()
        )


def test_the_smoke_checks_unknown_model_is_one_no_stage_can_serve() -> None:
    """tools/smoke_check/smoke_check.sh expects the gateway's 404 for this name, so no config may serve it."""
    data = stage_data("staging")
    for version in data["models"][0]["versions"]:
        version["served_model_name"] = UNKNOWN_MODEL_PROBE
    refused = "served_model_name 'smoke check: no such model' is not a model name"
    with pytest.raises(ConfigError, match=refused):
        parse_stage(data, name="staging", source="config/staging.yaml", cdk_context=read_cdk_context())
    # The gateway writes the name into its JSON 404 unescaped (k8s_charts/model_gateway.py).
    assert not {'"', "\\"} & set(UNKNOWN_MODEL_PROBE)
