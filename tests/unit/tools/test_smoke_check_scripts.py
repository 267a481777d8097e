"""The smoke-check scripts, run against stub `aws`, `kubectl` and `curl` commands that record their calls.

tools/smoke_check/smoke_check.sh runs in the stage's VPC; tools/start_smoke_check.sh runs in the
pipeline's post-deploy step. Each must pass on a healthy stage and fail on every kind of error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from config.loader import load_stage, read_cdk_context, stage_files
from config.serving import UNKNOWN_MODEL_PROBE
from config.vllm_support import facts_for
from k8s_charts.model_gateway import ENVOY_POD_LABELS
from stacks.pipeline_stack import SMOKE_CHECK_COMMANDS

ROOT = Path(__file__).resolve().parents[3]
SMOKE_CHECK = ROOT / "tools" / "smoke_check" / "smoke_check.sh"
START_SMOKE_CHECK = ROOT / "tools" / "start_smoke_check.sh"

KUBECTL = r"""#!/usr/bin/env bash
echo "kubectl $*" >>"$CALLS"
case "$*" in
  "get deployments"*"owning-gateway-name=model-gateway"*)
    [[ -n "${FAKE_NO_GATEWAY:-}" ]] || echo "deployment.apps/envoy-models-model-gateway-3b1f0c2a"
    ;;
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
# A `model`-routing stage's load balancer forwards to the gateway: answered by the GATEWAY stub.
[[ "${ROUTING_MODE:-}" != model ]] || exec python3 "$(dirname "$0")/gateway.py" "$@"
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
# Answers like a `model`-routing stage (k8s_charts/model_ingress.py gateway_rule, model_gateway.py): the
# ALB forwards only /v1/* (on <domain> over TLS, or the load balancer's hostname without a domain) to
# Envoy AI Gateway, which checks the key at the edge (401 invalid_api_key), answers GET /v1/models with
# every served name, routes POST /v1/completions on the body's `model` and answers an unknown model
# with OpenAI's 404 JSON. Faults: FAKE_UNLISTED (a served name the list leaves out), FAKE_FAILING_MODEL
# (its backend answers 500), FAKE_PLAIN_404 (AI Gateway's own text 404), FAKE_NO_EDGE_AUTH (no key check).
# Implements the curl options the script uses: --config, --header, --data-raw, --connect-to, --output,
# --write-out (%{http_code}, %{content_type}), --fail.
GATEWAY = r"""#!/usr/bin/env python3
import json, os, sys

args = sys.argv[1:]
with open(os.environ["CALLS"], "a") as calls:
    calls.write("curl " + " ".join(args) + "\n")
LB = "k8s-models-alb.us-east-1.elb.amazonaws.com"
VALUED = {"--max-time", "--retry", "--retry-delay", "--config", "--connect-to", "--header", "--data-raw",
          "--output", "--write-out"}
options, url, i = {}, None, 0
while i < len(args):
    if args[i] in VALUED:
        options.setdefault(args[i], []).append(args[i + 1])
        i += 2
        continue
    if args[i].startswith("http"):
        url = args[i]
    elif args[i] not in {"--fail", "--silent", "--show-error", "--retry-all-errors"}:
        sys.exit(f"stub curl: unexpected argument {args[i]}")
    i += 1
headers = {}
for config in options.get("--config", []):
    for line in open(config).read().splitlines():
        headers.update([line.removeprefix('header = "').removesuffix('"').split(": ", 1)])
headers.update(header.split(": ", 1) for header in options.get("--header", []))
headers = {name.lower(): value for name, value in headers.items()}


def answer(status, content_type, body):
    if "--fail" in args and status >= 400:
        sys.exit(22)
    out = options.get("--output", ["-"])[-1]
    if out == "-":
        sys.stdout.write(body)
    else:
        with open(out, "w") as file:
            file.write(body)
    for write_out in options.get("--write-out", []):
        write_out = write_out.replace("%{http_code}", str(status))
        sys.stdout.write(write_out.replace("%{content_type}", content_type))
    sys.exit(0)


domain = os.environ.get("INGRESS_DOMAIN", "")
if domain:
    at_lb = options.get("--connect-to") == [f"{domain}:443:{LB}:443"]
    if not (url.startswith(f"https://{domain}/") and at_lb):
        sys.exit(6)  # no such host: only <domain> has a rule, and it resolves to the load balancer
    path = url.removeprefix(f"https://{domain}")
elif url.startswith(f"http://{LB}/"):
    path = url.removeprefix(f"http://{LB}")
else:
    sys.exit(6)
if not path.startswith("/v1/"):
    answer(404, "text/plain; charset=utf-8", "")  # the ALB's default action: no rule for the path
key = os.environ["FAKE_GATEWAY_KEY"]
if not os.environ.get("FAKE_NO_EDGE_AUTH") and headers.get("authorization") != f"Bearer {key}":
    answer(401, "application/json", json.dumps({"error": {"code": "invalid_api_key"}}))
served = os.environ["SERVED_MODEL_NAMES"].split()
data = options.get("--data-raw")
if path == "/v1/models" and data is None:
    listed = [name for name in served if name != os.environ.get("FAKE_UNLISTED")]
    answer(200, "application/json", json.dumps({"object": "list", "data": [{"id": name} for name in listed]}))
if path == "/v1/completions" and data is not None:
    if headers.get("content-type") != "application/json":
        answer(400, "application/json", json.dumps({"error": {"message": "Unsupported Media Type"}}))
    model = json.loads(data[-1])["model"]
    if model not in served and os.environ.get("FAKE_PLAIN_404"):
        answer(404, "text/plain", "No matching route found. It is likely because the model specified in "
               "your request is not configured in the Gateway.")
    if model not in served:
        error = {"message": f"The model `{model}` does not exist or you do not have access to it.",
                 "type": "invalid_request_error", "param": "model", "code": "model_not_found"}
        answer(404, "application/json", json.dumps({"error": error}))
    if model == os.environ.get("FAKE_FAILING_MODEL"):
        answer(500, "application/json", json.dumps({"error": {"message": "upstream connect error"}}))
    answer(200, "application/json", json.dumps({"object": "text_completion", "model": model,
                                                 "choices": [{"index": 0, "text": " pong"}]}))
answer(404, "text/plain", "unsupported path")
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
    for name, body in {"kubectl": KUBECTL, "curl": CURL, "gateway.py": GATEWAY, "aws": AWS}.items():
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
    "ROUTING_MODE": "header",
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
    result, calls = run(
        SMOKE_CHECK, stubs, **{**CHECK_ENV, "ROUTING_MODE": "host"}, INGRESS_DOMAIN="llm.example.com"
    )
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


def test_routing_mode_is_required_and_host_mode_needs_the_domain(stubs: Path) -> None:
    result, calls = run(SMOKE_CHECK, stubs, **{**CHECK_ENV, "ROUTING_MODE": ""})
    assert result.returncode != 0
    assert "ROUTING_MODE ''; allowed: host, header or model" in result.stderr
    assert calls == []  # refused before touching the cluster
    result, _ = run(SMOKE_CHECK, stubs, **{**CHECK_ENV, "ROUTING_MODE": "host"})
    assert result.returncode != 0
    assert "ROUTING_MODE host needs INGRESS_DOMAIN" in result.stderr


KEY = "k3y-only-in-the-environment"
SERVED = ("llama-3-1-8b", "meta-llama/Llama-3.1-70B-Instruct")
MODEL_ENV = {
    **CHECK_ENV,
    "ROUTING_MODE": "model",
    "SERVED_MODEL_NAMES": " ".join(SERVED),
    "UNKNOWN_MODEL": UNKNOWN_MODEL_PROBE,
    "API_KEY": KEY,
    "FAKE_GATEWAY_KEY": KEY,
    "GATEWAY_SELECTOR": ",".join(f"{key}={value}" for key, value in ENVOY_POD_LABELS.items()),
}
LB_URL = "http://k8s-models-alb.us-east-1.elb.amazonaws.com"


def completion_calls(calls: list[str], model: str) -> list[str]:
    body = json.dumps({"model": model, "prompt": "ping", "max_tokens": 1})
    return [call for call in calls if call.endswith("/v1/completions") and f"--data-raw {body}" in call]


def test_model_mode_stage_passes_through_the_gateway(stubs: Path) -> None:
    """One endpoint: the list, a 1-token completion per served name, the unknown model, the edge key."""
    result, calls = run(SMOKE_CHECK, stubs, **MODEL_ENV)
    assert result.returncode == 0, result.stderr
    for model in ("llama-3-1-8b", "llama-3-1-70b"):  # the rollouts are still checked per model id
        assert any(
            call.startswith(f"kubectl rollout status --namespace models deployment.apps/{model}-v1")
            for call in calls
        )
    assert any(
        call.startswith(
            "kubectl rollout status --namespace models deployment.apps/envoy-models-model-gateway-"
        )
        for call in calls
    )
    http = [call for call in calls if call.startswith("curl ")]
    assert not [call for call in http if call.endswith("/health") or "x-model-id" in call]
    listings = [call for call in http if call.endswith(f"{LB_URL}/v1/models")]
    assert len(listings) == 3  # with the key, without one, with a wrong one
    assert "--config /dev/fd/" in listings[0]
    assert not [call for call in listings[1:] if "--config" in call]
    for model in SERVED:
        (completion,) = completion_calls(calls, model)
        assert completion.startswith("curl ")
        assert f"{LB_URL}/v1/completions" in completion
        assert "--header Content-Type: application/json" in completion
    assert len(completion_calls(calls, UNKNOWN_MODEL_PROBE)) == 1
    assert all(KEY not in call for call in calls)  # the key reaches curl on a pipe, never in argv
    assert "'smoke check: no such model': 404 model_not_found" in result.stdout
    assert "no key and a wrong key: 401" in result.stdout
    assert "smoke check passed" in result.stdout


def test_model_mode_requests_are_routes_of_the_pinned_vllm() -> None:
    """The 1-token request must reach a route the served image has (config/vllm_facts/, tools/vllm_facts.py):
    vLLM attaches its completion and chat routers to every "generate" model, chat models included."""
    script = SMOKE_CHECK.read_text()
    for route in ("POST /v1/completions", "GET /v1/models"):
        assert f'"$base_url{route.split()[1]}"' in script
        for path in stage_files():
            for model in load_stage(path, cdk_context=read_cdk_context()).models:
                for version in model.versions:
                    assert route in facts_for(version.image_tag).http_routes, (version.image_tag, route)


def test_model_mode_with_a_domain_uses_the_one_host_at_the_load_balancer(stubs: Path) -> None:
    result, calls = run(SMOKE_CHECK, stubs, **MODEL_ENV, INGRESS_DOMAIN="llm.example.com")
    assert result.returncode == 0, result.stderr
    http = [call for call in calls if call.startswith("curl ")]
    assert len(http) == 3 + len(SERVED) + 1
    for call in http:
        assert "--connect-to llm.example.com:443:k8s-models-alb.us-east-1.elb.amazonaws.com:443" in call
        assert call.endswith(("https://llm.example.com/v1/models", "https://llm.example.com/v1/completions"))


def test_the_fake_gateway_has_no_health_rule_and_no_per_model_hosts(stubs: Path) -> None:
    """The stub is strict: the host/header checks (GET /health per model) cannot pass a model-mode stage."""
    env = {**os.environ, **MODEL_ENV, "CALLS": str(stubs / "calls.log")}
    curl = str(stubs / "bin" / "curl")
    health = [curl, "--fail", "--header", "x-model-id: llama-3-1-8b", f"{LB_URL}/health"]
    assert subprocess.run(health, env=env, check=False).returncode == 22  # noqa: S603
    host = [
        curl,
        "--fail",
        "--connect-to",
        "llama-3-1-8b.llm.example.com:443:x:443",
        "https://llama-3-1-8b.llm.example.com/v1/models",
    ]
    env["INGRESS_DOMAIN"] = "llm.example.com"
    assert subprocess.run(host, env=env, check=False).returncode == 6  # noqa: S603


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            {"FAKE_UNLISTED": "meta-llama/Llama-3.1-70B-Instruct"},
            "GET /v1/models does not list served model(s): meta-llama/Llama-3.1-70B-Instruct",
        ),
        (
            {"FAKE_FAILING_MODEL": "meta-llama/Llama-3.1-70B-Instruct"},
            "POST /v1/completions for model meta-llama/Llama-3.1-70B-Instruct answered HTTP 500",
        ),
        (
            {"FAKE_PLAIN_404": "1"},
            "AI Gateway's plain-text 'No matching route found' (HTTP 404), not OpenAI's model_not_found "
            "JSON: the controller's HTTPRouteFilter is served instead of the chart's (docs/serving.md",
        ),
        (
            {"FAKE_NO_EDGE_AUTH": "1"},
            "GET /v1/models without a key answered HTTP 200; expected 401",
        ),
        (
            {"FAKE_GATEWAY_KEY": "another-key"},
            "GET /v1/models with the key answered 401: the edge refused the stage's key",
        ),
        ({"FAKE_NO_GATEWAY": "1"}, "the model gateway has no Envoy Deployment in namespace models"),
        ({"GATEWAY_SELECTOR": ""}, "ROUTING_MODE model needs GATEWAY_SELECTOR"),
        ({"SERVED_MODEL_NAMES": ""}, "ROUTING_MODE model needs SERVED_MODEL_NAMES"),
        ({"UNKNOWN_MODEL": ""}, "ROUTING_MODE model needs UNKNOWN_MODEL"),
        ({"API_KEY": ""}, "ROUTING_MODE model needs API_KEY"),
    ],
)
def test_each_kind_of_model_mode_failure_fails_the_check(
    stubs: Path, fault: dict[str, str], message: str
) -> None:
    result, _ = run(SMOKE_CHECK, stubs, **{**MODEL_ENV, **fault})
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "smoke check passed" not in result.stdout


class LoopbackGateway(BaseHTTPRequestHandler):
    """The model-mode gateway's answers over real HTTP, so the real curl's options are exercised too."""

    served: tuple[str, ...] = SERVED
    plain_404 = False

    def log_message(self, format: str, *args: object) -> None:
        pass

    def reply(self, status: int, content_type: str, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorised(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {KEY}":
            return True
        self.reply(401, "application/json", json.dumps({"error": {"code": "invalid_api_key"}}))
        return False

    def do_GET(self) -> None:
        if self.path != "/v1/models":
            self.reply(404, "text/plain", "")
        elif self.authorised():
            listing = {"object": "list", "data": [{"id": name} for name in self.served]}
            self.reply(200, "application/json", json.dumps(listing))

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/completions" or self.headers.get("Content-Type") != "application/json":
            self.reply(400, "application/json", "{}")
        elif not self.authorised():
            pass
        elif request["model"] in self.served:
            self.reply(200, "application/json", json.dumps({"choices": [{"index": 0, "text": " pong"}]}))
        elif self.plain_404:
            self.reply(404, "text/plain", "No matching route found.")
        else:
            error = {"message": f"The model `{request['model']}` does not exist", "code": "model_not_found"}
            self.reply(404, "application/json", json.dumps({"error": error}))


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs a real curl")
@pytest.mark.parametrize("plain_404", [False, True])
def test_model_mode_with_the_real_curl_against_a_loopback_gateway(tmp_path: Path, plain_404: bool) -> None:
    """The stub curl above emulates the options; here the real one sends them (loopback only)."""
    handler = type("Gateway", (LoopbackGateway,), {"plain_404": plain_404})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        address = f"127.0.0.1:{server.server_address[1]}"  # the "load balancer hostname"
        for name, body in {
            "kubectl": KUBECTL.replace("k8s-models-alb.us-east-1.elb.amazonaws.com", address),
            "aws": AWS,
        }.items():
            (bin_dir / name).write_text(body)
            (bin_dir / name).chmod(0o755)
        result, _ = run(
            SMOKE_CHECK, tmp_path, **{**MODEL_ENV, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
        )
    finally:
        server.shutdown()
        server.server_close()
    if plain_404:
        assert result.returncode != 0
        assert "AI Gateway's plain-text 'No matching route found' (HTTP 404)" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert "no key and a wrong key: 401" in result.stdout


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
