"""The smoke-check scripts, run against stub `aws`, `kubectl` and `curl` commands that record their calls.

tools/smoke_check/smoke_check.sh runs in the stage's VPC; tools/start_smoke_check.sh runs in the
pipeline's post-deploy step. Each must pass on a healthy stage and fail on every kind of error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from stacks.pipeline_stack import SMOKE_CHECK_COMMANDS

ROOT = Path(__file__).resolve().parents[3]
SMOKE_CHECK = ROOT / "tools" / "smoke_check" / "smoke_check.sh"
START_SMOKE_CHECK = ROOT / "tools" / "start_smoke_check.sh"

KUBECTL = r"""#!/usr/bin/env bash
echo "kubectl $*" >>"$CALLS"
case "$*" in
  "get deployments"*)
    args="$*"; model="${args##*llm-inference/model-id=}"; model="${model%% *}"
    [[ "$model" == "${FAKE_MISSING_MODEL:-}" ]] || echo "deployment.apps/$model-v1"
    ;;
  "rollout status"*) [[ -z "${FAKE_ROLLOUT_FAILS:-}" ]] ;;
  "get ingress"*) [[ -n "${FAKE_NO_INGRESS:-}" ]] || printf 'k8s-models-alb.us-east-1.elb.amazonaws.com' ;;
esac
"""
# Answers like the ALB the Ingress configures (k8s_charts/model_ingress.py): with INGRESS_DOMAIN only
# the host rules <model>.<domain> (reached at the load balancer), without it only the x-model-id
# header rules; a request no rule matches gets the default 404 (curl --fail: exit 22).
CURL = r"""#!/usr/bin/env bash
echo "curl $*" >>"$CALLS"
url="${*: -1}"
lb="k8s-models-alb.us-east-1.elb.amazonaws.com"
matched=""
args=("$@")
for model in $MODEL_IDS; do
  if [[ -n "${INGRESS_DOMAIN:-}" ]]; then
    host="$model.$INGRESS_DOMAIN"
    for ((i = 0; i < ${#args[@]}; i++)); do
      if [[ "${args[i]}" == "--connect-to" && "${args[i+1]}" == "$host:443:$lb:443" ]] &&
        [[ "$url" == "https://$host/"* ]]; then matched="$model"; fi
    done
  else
    for ((i = 0; i < ${#args[@]}; i++)); do
      if [[ "${args[i]}" == "--header" && "${args[i+1]}" == "x-model-id: $model" ]] &&
        [[ "$url" == "http://$lb/"* ]]; then matched="$model"; fi
    done
  fi
done
[[ -n "$matched" ]] || exit 22
case "$url" in
  */health) exit "${FAKE_HEALTH_RC:-0}" ;;
  */v1/models) listing='{"object":"list","data":[{"id":"m"}]}'; printf '%s' "${FAKE_MODELS_BODY:-$listing}" ;;
esac
"""
AWS = r"""#!/usr/bin/env bash
echo "aws $*" >>"$CALLS"
case "$*" in
  "sts assume-role"*) printf 'AKIA SECRET TOKEN\n' ;;
  "codebuild start-build"*) printf 'smoke:1234\n' ;;
  "codebuild batch-get-builds"*"buildStatus"*)
    count=$(($(cat "$STATE" 2>/dev/null || echo 0) + 1)); echo "$count" >"$STATE"
    if ((count < 2)); then echo IN_PROGRESS; else echo "${FAKE_BUILD_STATUS:-SUCCEEDED}"; fi
    ;;
  "codebuild batch-get-builds"*) printf '/aws/codebuild/smoke\tstream-1\n' ;;
  "logs get-log-events"*) printf 'smoke check passed\n' ;;
esac
"""


@pytest.fixture
def stubs(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {"kubectl": KUBECTL, "curl": CURL, "aws": AWS}.items():
        path = bin_dir / name
        path.write_text(body)
        path.chmod(0o755)
    return tmp_path


def run(script: Path, stubs: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    calls = stubs / "calls.log"
    base = {
        "PATH": f"{stubs / 'bin'}:{os.environ['PATH']}",
        "CALLS": str(calls),
        "STATE": str(stubs / "state"),
        "HOME": str(stubs),
    }
    bash = shutil.which("bash") or "/bin/bash"
    result = subprocess.run(  # noqa: S603 (fixed script path, test-controlled environment)
        [bash, str(script)], env={**base, **env}, capture_output=True, text=True, timeout=60, check=False
    )
    return result, calls.read_text().splitlines() if calls.exists() else []


CHECK_ENV = {
    "CLUSTER_NAME": "llm-inference-dev",
    "AWS_REGION": "us-east-1",
    "MODEL_IDS": "llama-3-1-8b llama-3-1-70b",
    "INGRESS_WAIT_SECONDS": "0",
}


@pytest.mark.parametrize("script", [SMOKE_CHECK, START_SMOKE_CHECK])
def test_scripts_parse_and_stop_on_errors(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True)  # noqa: S603, S607
    assert "set -euo pipefail" in script.read_text()


def test_healthy_stage_passes_with_rollout_health_and_model_list(stubs: Path) -> None:
    result, calls = run(SMOKE_CHECK, stubs, **CHECK_ENV)
    assert result.returncode == 0, result.stderr
    assert "aws eks update-kubeconfig --name llm-inference-dev --region us-east-1" in calls
    for model in ("llama-3-1-8b", "llama-3-1-70b"):
        assert (
            f"kubectl get deployments --namespace models --selector "
            f"app.kubernetes.io/name=vllm,llm-inference/model-id={model} --output name"
        ) in calls
        assert any(
            call.startswith(f"kubectl rollout status --namespace models deployment.apps/{model}-v1")
            for call in calls
        )
        assert any(f"x-model-id: {model}" in call and call.endswith("/health") for call in calls)
    models_calls = [call for call in calls if call.endswith("/v1/models")]
    assert len(models_calls) == 1
    assert "x-model-id: llama-3-1-8b" in models_calls[0]
    assert models_calls[0].endswith("http://k8s-models-alb.us-east-1.elb.amazonaws.com/v1/models")
    assert "smoke check passed" in result.stdout


def test_tls_ingress_is_checked_by_each_model_host_at_the_load_balancer(stubs: Path) -> None:
    """With a domain the Ingress routes by host <model>.<domain> only (no header rules)."""
    result, calls = run(SMOKE_CHECK, stubs, **CHECK_ENV, INGRESS_DOMAIN="llm.example.com")
    assert result.returncode == 0, result.stderr
    for model in ("llama-3-1-8b", "llama-3-1-70b"):
        (health,) = [call for call in calls if call.endswith(f"https://{model}.llm.example.com/health")]
        assert (
            f"--connect-to {model}.llm.example.com:443:k8s-models-alb.us-east-1.elb.amazonaws.com:443"
            in health
        )
    assert any(call.endswith("https://llama-3-1-8b.llm.example.com/v1/models") for call in calls)


def test_the_fake_load_balancer_refuses_a_request_no_rule_matches(stubs: Path) -> None:
    """The stub is strict: the bare domain with a header (the old request) matches no host rule."""
    bin_curl = stubs / "bin" / "curl"
    env = {
        **os.environ,
        "CALLS": str(stubs / "calls.log"),
        "MODEL_IDS": "m",
        "INGRESS_DOMAIN": "llm.example.com",
    }
    old_request = [
        str(bin_curl),
        "--header",
        "x-model-id: m",
        "--connect-to",
        "llm.example.com:443:k8s-models-alb.us-east-1.elb.amazonaws.com:443",
        "https://llm.example.com/health",
    ]
    assert subprocess.run(old_request, env=env, check=False).returncode == 22  # noqa: S603


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"FAKE_MISSING_MODEL": "llama-3-1-70b"}, "model llama-3-1-70b has no Deployment"),
        ({"FAKE_ROLLOUT_FAILS": "1"}, "did not roll out"),
        ({"FAKE_NO_INGRESS": "1"}, "no Ingress in namespace models has a load balancer hostname"),
        ({"FAKE_HEALTH_RC": "22"}, "GET /health for model llama-3-1-8b"),
        ({"FAKE_MODELS_BODY": '{"object":"list","data":[]}'}, "lists no model"),
        ({"FAKE_MODELS_BODY": "<html>bad gateway</html>"}, "did not return a model list"),
    ],
)
def test_each_kind_of_failure_fails_the_check(stubs: Path, fault: dict[str, str], message: str) -> None:
    result, _ = run(SMOKE_CHECK, stubs, **CHECK_ENV, **fault)
    assert result.returncode != 0
    assert message in result.stderr


def test_missing_environment_fails(stubs: Path) -> None:
    result, _ = run(SMOKE_CHECK, stubs, MODEL_IDS="m")
    assert result.returncode != 0
    assert "CLUSTER_NAME is required" in result.stderr


START_ENV = {
    "PROJECT_NAME": "SmokeCheckProject",
    "TRIGGER_ROLE_ARN": "arn:aws:iam::222222222222:role/llm-inference/smoke-check/staging/Trigger",
    "STAGE_REGION": "us-east-1",
    "POLL_SECONDS": "0",
}


def test_pipeline_step_starts_the_stage_check_and_waits_for_success(stubs: Path) -> None:
    result, calls = run(START_SMOKE_CHECK, stubs, **START_ENV)
    assert result.returncode == 0, result.stderr
    assert calls[0].startswith(f"aws sts assume-role --role-arn {START_ENV['TRIGGER_ROLE_ARN']}")
    assert (
        "aws codebuild start-build --project-name SmokeCheckProject --query build.id --output text" in calls
    )
    assert len([call for call in calls if "buildStatus" in call]) == 2  # polled until it left IN_PROGRESS
    assert "smoke check passed" in result.stdout  # the stage build's log is shown in the pipeline
    assert "SUCCEEDED" in result.stdout


@pytest.mark.parametrize("status", ["FAILED", "FAULT", "TIMED_OUT", "STOPPED"])
def test_pipeline_step_fails_unless_the_build_succeeded(stubs: Path, status: str) -> None:
    result, _ = run(START_SMOKE_CHECK, stubs, **START_ENV, FAKE_BUILD_STATUS=status)
    assert result.returncode != 0
    assert status in result.stdout


def test_pipeline_step_runs_the_start_script() -> None:
    assert (f"bash {START_SMOKE_CHECK.relative_to(ROOT)}",) == SMOKE_CHECK_COMMANDS


def test_stage_without_models_has_nothing_to_check(stubs: Path) -> None:
    result, calls = run(SMOKE_CHECK, stubs, **{**CHECK_ENV, "MODEL_IDS": ""})
    assert result.returncode == 0, result.stderr
    assert "nothing to check" in result.stdout
    assert calls == []
