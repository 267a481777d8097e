#!/usr/bin/env bash
# Post-deploy smoke check of one stage. Runs in the stage's SmokeCheck CodeBuild project, inside the
# stage's VPC, as a principal whose EKS access entry grants only AmazonEKSViewPolicy in `models`.
#
# 1. every configured model has a Deployment (namespace models, label app.kubernetes.io/name=vllm);
# 2. every such Deployment finishes its rollout (kubectl rollout status), and in model mode the
#    gateway's Envoy Deployment too;
# 3. through the ingress found in the Ingress status, the way the stage routes (ROUTING_MODE, resolved
#    from config by stacks/smoke_check_stack.py; k8s_charts/model_ingress.py builds the same rules):
#    host/header: GET /health for every model and one GET /v1/models, each model reached by host
#      <model>.<domain> over TLS (host) or by the x-model-id header on the load balancer (header);
#    model: one endpoint, the Envoy AI Gateway behind the ALB's /v1/* rule (k8s_charts/model_gateway.py):
#      GET /v1/models with the key lists every served name; a 1-token POST /v1/completions per served
#      name answers `choices`; UNKNOWN_MODEL gets OpenAI's 404 JSON `model_not_found`; GET /v1/models
#      without a key, and with a wrong one, gets 401 (the key is checked at the edge).
#    Any failure exits non-zero.
#
# Environment: CLUSTER_NAME, AWS_REGION, MODEL_IDS (space-separated ids; empty: nothing to check),
#              ROUTING_MODE (host, header or model)
# Model mode:  SERVED_MODEL_NAMES (space-separated served_model_name of every model), UNKNOWN_MODEL
#              (a name no stage can serve), GATEWAY_SELECTOR (labels of the gateway's Envoy Deployment),
#              API_KEY (required: model mode requires ingress.auth api-key)
# Optional:    NAMESPACE (models), ROLLOUT_TIMEOUT (20m), INGRESS_DOMAIN (the ingress domain: hosts
#              are <model>.<domain>, or <domain> in model mode, over TLS; unset: plain HTTP to the load
#              balancer's hostname), INGRESS_WAIT_SECONDS (600),
#              API_KEY (the stage's model API key; CodeBuild reads it from Secrets Manager)
set -euo pipefail

namespace="${NAMESPACE:-models}"
selector="app.kubernetes.io/name=vllm"
rollout_timeout="${ROLLOUT_TIMEOUT:-20m}"
ingress_wait_seconds="${INGRESS_WAIT_SECONDS:-600}"
read -r -a model_ids <<<"${MODEL_IDS:-}"

fail() {
  echo "smoke check FAILED: $*" >&2
  exit 1
}

: "${CLUSTER_NAME:?CLUSTER_NAME is required}"
: "${AWS_REGION:?AWS_REGION is required}"
routing_mode="${ROUTING_MODE:-}"
case "$routing_mode" in
  host) [[ -n "${INGRESS_DOMAIN:-}" ]] || fail "ROUTING_MODE host needs INGRESS_DOMAIN (hosts are <model>.<domain>)" ;;
  header | model) ;;
  *) fail "ROUTING_MODE '$routing_mode'; allowed: host, header or model (the stage's ingress.routing)" ;;
esac
if [[ ${#model_ids[@]} -eq 0 ]]; then
  echo "no models configured for this stage; nothing to check"
  exit 0
fi

aws eks update-kubeconfig --name "$CLUSTER_NAME" --region "$AWS_REGION" >/dev/null

echo "== rollouts in namespace $namespace"
for model in "${model_ids[@]}"; do
  deployments=$(kubectl get deployments --namespace "$namespace" \
    --selector "$selector,llm-inference/model-id=$model" --output name)
  [[ -n "$deployments" ]] || fail "model $model has no Deployment with label $selector"
  for deployment in $deployments; do
    kubectl rollout status --namespace "$namespace" "$deployment" --timeout "$rollout_timeout" ||
      fail "$deployment of model $model did not roll out within $rollout_timeout"
  done
done

if [[ "$routing_mode" == model ]]; then
  # Envoy Gateway names the proxy's Deployment itself; its labels name the Gateway. A ready rollout
  # also means healthy ALB targets (namespace models injects the ALB readiness gate).
  : "${GATEWAY_SELECTOR:?ROUTING_MODE model needs GATEWAY_SELECTOR}"
  deployments=$(kubectl get deployments --namespace "$namespace" --selector "$GATEWAY_SELECTOR" --output name)
  [[ -n "$deployments" ]] ||
    fail "the model gateway has no Envoy Deployment in namespace $namespace (labels $GATEWAY_SELECTOR)"
  for deployment in $deployments; do
    kubectl rollout status --namespace "$namespace" "$deployment" --timeout "$rollout_timeout" ||
      fail "$deployment (the model gateway's Envoy) did not roll out within $rollout_timeout"
  done
fi

echo "== ingress"
# The load balancer controller fills the status once the ALB exists; a first deploy may wait for it.
deadline=$((SECONDS + ingress_wait_seconds))
while true; do
  hostname=$(kubectl get ingress --namespace "$namespace" \
    --output jsonpath='{.items[0].status.loadBalancer.ingress[0].hostname}' 2>/dev/null || true)
  [[ -z "$hostname" ]] || break
  ((SECONDS < deadline)) ||
    fail "no Ingress in namespace $namespace has a load balancer hostname after ${ingress_wait_seconds}s"
  sleep 15
done
echo "load balancer: $hostname"

curl_args=(--fail --silent --show-error --max-time 15 --retry 5 --retry-delay 10 --retry-all-errors)

# Sets base_url and route for one model, matching the Ingress rule that serves it.
route_to() {
  local model="$1"
  if [[ "$routing_mode" == host ]]; then
    # Host rule <model>.<domain>: verify TLS against that name while connecting to the load balancer.
    local host="$model.$INGRESS_DOMAIN"
    base_url="https://$host"
    route=(--connect-to "$host:443:$hostname:443")
  else
    base_url="http://$hostname"
    route=(--header "x-model-id: $model")
  fi
}

# The key goes to curl as a config file on a pipe, never as an argument (visible in ps).
auth_config() { [[ -z "${API_KEY:-}" ]] || printf 'header = "Authorization: Bearer %s"\n' "$API_KEY"; }

# host and header routing: a rule per model id that forwards /health and /v1/* to its versions.
check_per_model_rules() {
  echo "== /health"
  for model in "${model_ids[@]}"; do
    route_to "$model"
    curl "${curl_args[@]}" "${route[@]}" --output /dev/null "$base_url/health" ||
      fail "GET /health for model $model"
    echo "$model: healthy"
  done

  echo "== /v1/models"
  local first_model="${model_ids[0]}" listing served
  route_to "$first_model"
  listing=$(curl "${curl_args[@]}" --config <(auth_config) "${route[@]}" "$base_url/v1/models") ||
    fail "GET /v1/models for model $first_model"
  served=$(printf '%s' "$listing" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["data"]))' 2>/dev/null) ||
    fail "GET /v1/models for model $first_model did not return a model list: $listing"
  [[ "$served" -ge 1 ]] || fail "GET /v1/models for model $first_model lists no model"
  echo "$first_model: serves $served model(s)"
}

# ask <what> <max seconds> <curl arguments...>: one request through the gateway. Sets status and
# content_type and leaves the body in $body_file; an HTTP error status is an answer, not a failure.
# curl retries connection errors and its transient statuses (408, 429, 500, 502, 503, 504).
ask() {
  local what="$1" answer
  answer=$(curl --silent --show-error --max-time "$2" --retry 5 --retry-delay 10 --retry-all-errors \
    "${route[@]}" --output "$body_file" --write-out '%{http_code} %{content_type}' "${@:3}") ||
    fail "$what: no answer from $base_url"
  read -r status content_type <<<"$answer"
}
body() { head -c 500 "$body_file"; }

json_body() { # model -> the 1-token completion request for it
  python3 -c 'import json, sys; print(json.dumps({"model": sys.argv[1], "prompt": "ping", "max_tokens": 1}))' "$1"
}

# model routing: one endpoint; the gateway reads `model` from the body (docs/serving.md, `model` mode).
check_model_gateway() {
  local served_names missing name
  read -r -a served_names <<<"${SERVED_MODEL_NAMES:-}"
  [[ ${#served_names[@]} -gt 0 ]] || fail "ROUTING_MODE model needs SERVED_MODEL_NAMES"
  [[ -n "${UNKNOWN_MODEL:-}" ]] || fail "ROUTING_MODE model needs UNKNOWN_MODEL"
  [[ -n "${API_KEY:-}" ]] || fail "ROUTING_MODE model needs API_KEY (model mode requires ingress.auth api-key)"
  if [[ -n "${INGRESS_DOMAIN:-}" ]]; then
    # One host rule, <domain>: verify TLS against it while connecting to the load balancer.
    base_url="https://$INGRESS_DOMAIN"
    route=(--connect-to "$INGRESS_DOMAIN:443:$hostname:443")
  else
    base_url="http://$hostname"
    route=()
  fi
  body_file=$(mktemp)
  trap 'rm -f "$body_file"' EXIT

  echo "== GET /v1/models (with the key)"
  ask "GET /v1/models" 15 --config <(auth_config) "$base_url/v1/models"
  [[ "$status" != 401 ]] ||
    fail "GET /v1/models with the key answered 401: the edge refused the stage's key (docs/serving.md, model mode, 'The Bearer scheme')"
  [[ "$status" == 200 ]] || fail "GET /v1/models answered HTTP $status: $(body)"
  missing=$(python3 -c '
import json, sys
listed = {entry["id"] for entry in json.load(open(sys.argv[1]))["data"]}
print(" ".join(name for name in sys.argv[2:] if name not in listed))' "$body_file" "${served_names[@]}" 2>/dev/null) ||
    fail "GET /v1/models did not return a model list: $(body)"
  [[ -z "$missing" ]] || fail "GET /v1/models does not list served model(s): $missing"
  echo "lists all ${#served_names[@]} served model(s)"

  echo "== POST /v1/completions, 1 token per model"
  for name in "${served_names[@]}"; do
    ask "POST /v1/completions for model $name" 30 --config <(auth_config) \
      --header "Content-Type: application/json" --data-raw "$(json_body "$name")" "$base_url/v1/completions"
    [[ "$status" == 200 ]] ||
      fail "POST /v1/completions for model $name answered HTTP $status: $(body)"
    python3 -c 'import json, sys; c = json.load(open(sys.argv[1]))["choices"]; sys.exit(not (isinstance(c, list) and c))' \
      "$body_file" 2>/dev/null ||
      fail "POST /v1/completions for model $name answered no choices: $(body)"
    echo "$name: answered"
  done

  echo "== unknown model"
  ask "POST /v1/completions for model '$UNKNOWN_MODEL'" 15 --config <(auth_config) \
    --header "Content-Type: application/json" --data-raw "$(json_body "$UNKNOWN_MODEL")" "$base_url/v1/completions"
  if grep -q "No matching route found" "$body_file"; then
    fail "an unknown model got AI Gateway's plain-text 'No matching route found' (HTTP $status), not OpenAI's" \
      "model_not_found JSON: the controller's HTTPRouteFilter is served instead of the chart's (docs/serving.md," \
      "model mode, 'Unknown model'; kubectl -n models get httproutefilter -o yaml)"
  fi
  [[ "$status" == 404 && "$content_type" == application/json* ]] ||
    fail "an unknown model answered HTTP $status, content-type '$content_type'; expected 404 application/json: $(body)"
  python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["error"]["code"] != "model_not_found")' \
    "$body_file" 2>/dev/null ||
    fail "an unknown model's 404 has no error.code model_not_found: $(body)"
  echo "'$UNKNOWN_MODEL': 404 model_not_found"

  echo "== the key is checked at the edge"
  ask "GET /v1/models without a key" 15 "$base_url/v1/models"
  [[ "$status" == 401 ]] || fail "GET /v1/models without a key answered HTTP $status; expected 401 (SecurityPolicy apiKeyAuth)"
  ask "GET /v1/models with a wrong key" 15 --header "Authorization: Bearer smoke-check-wrong-key" "$base_url/v1/models"
  [[ "$status" == 401 ]] || fail "GET /v1/models with a wrong key answered HTTP $status; expected 401 (SecurityPolicy apiKeyAuth)"
  echo "no key and a wrong key: 401"
}

if [[ "$routing_mode" == model ]]; then
  check_model_gateway
else
  check_per_model_rules
fi
echo "smoke check passed"
