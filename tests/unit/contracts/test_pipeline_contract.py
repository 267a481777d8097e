"""Pipeline facts from upstream: CodeConnections' IAM prefix and CodeBuild's image runtimes.

- Developer Tools console guide, "Connections rename": "When specifying a resource in the IAM
  policy, the service prefix needs to match that of the resource."
- aws/aws-codebuild-docker-images ubuntu/standard/7.0: the Dockerfile activates Node 18 by default
  (``n $NODE_18_VERSION``); runtimes.yml offers nodejs 18/20 and python 3.11/3.12.
"""

from __future__ import annotations

import json
from typing import Any

from stacks.pipeline_stack import BUILD_IMAGE, RUNTIME_VERSIONS, connection_service
from tests.synth import PipelineSynthResult
from tests.templates import as_list

STANDARD_7_RUNTIMES = {"nodejs": {"18", "20"}, "python": {"3.11", "3.12"}}
"""What ubuntu/standard/7.0/runtimes.yml offers (checked at aws/aws-codebuild-docker-images)."""


def _statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_connection_actions_use_the_prefix_of_the_connection_arn(pipeline_synth: PipelineSynthResult) -> None:
    checked = 0
    for statement in _statements(pipeline_synth.pipeline_template):
        connection_arns = [
            r for r in as_list(statement.get("Resource")) if isinstance(r, str) and ":connection/" in r
        ]
        for arn in connection_arns:
            for action in as_list(statement["Action"]):
                assert action.split(":")[0] == connection_service(arn), (action, arn)
                checked += 1
    assert checked >= 1  # the source action's UseConnection grant is among them


def test_the_example_connection_is_a_codeconnections_arn(pipeline_synth: PipelineSynthResult) -> None:
    arn = pipeline_synth.config.source.connection_arn
    assert arn is not None
    assert connection_service(arn) == "codeconnections"
    grants = [s for s in _statements(pipeline_synth.pipeline_template) if arn in as_list(s.get("Resource"))]
    assert [s["Action"] for s in grants] == ["codeconnections:UseConnection"]


def test_pinned_runtimes_exist_on_the_build_image() -> None:
    assert BUILD_IMAGE.image_id == "aws/codebuild/standard:7.0"
    for runtime, version in RUNTIME_VERSIONS.items():
        assert version in STANDARD_7_RUNTIMES[runtime], runtime
    assert RUNTIME_VERSIONS["nodejs"] != "18"  # the image's default, too old for the project


def test_every_pipeline_build_pins_its_runtimes(pipeline_synth: PipelineSynthResult) -> None:
    projects = [
        resource["Properties"]
        for resource in pipeline_synth.pipeline_template["Resources"].values()
        if resource["Type"] == "AWS::CodeBuild::Project"
    ]
    assert projects
    for project in projects:
        spec = json.loads(project["Source"]["BuildSpec"])
        assert spec["phases"]["install"]["runtime-versions"] == RUNTIME_VERSIONS, project.get("Description")
