#!/usr/bin/env bash
# Post-deploy smoke check of one stage. Runs in the stage's SmokeCheck CodeBuild project, inside the
# stage's VPC, as a principal whose EKS access entry grants only AmazonEKSViewPolicy in `models`.
#
# 1. every configured model has a Deployment (namespace models, label app.kubernetes.io/name=vllm);
# 2. every such Deployment finishes its rollout (kubectl rollout status);
# 3. through the ingress found in the Ingress status: GET /health for every model and one
#    GET /v1/models, each model reached the way the Ingress routes it (k8s_charts/model_ingress.py):
#    with INGRESS_DOMAIN by host <model>.<domain> over TLS, without it by the x-model-id header.
#    Any failure exits non-zero.
#
# Environment: CLUSTER_NAME, AWS_REGION, MODEL_IDS (space-separated ids; empty: nothing to check)
# Optional:    NAMESPACE (models), ROLLOUT_TIMEOUT (20m), INGRESS_DOMAIN (the ingress domain: hosts
#              are <model>.<domain>; unset: plain HTTP to the load balancer's hostname with the
#              x-model-id header), INGRESS_WAIT_SECONDS (600),
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
  if [[ -n "${INGRESS_DOMAIN:-}" ]]; then
    # Host rule <model>.<domain>: verify TLS against that name while connecting to the load balancer.
    local host="$model.$INGRESS_DOMAIN"
    base_url="https://$host"
    route=(--connect-to "$host:443:$hostname:443")
  else
    base_url="http://$hostname"
    route=(--header "x-model-id: $model")
  fi
}

echo "== /health"
for model in "${model_ids[@]}"; do
  route_to "$model"
  curl "${curl_args[@]}" "${route[@]}" --output /dev/null "$base_url/health" ||
    fail "GET /health for model $model"
  echo "$model: healthy"
done

echo "== /v1/models"
first_model="${model_ids[0]}"
route_to "$first_model"
# The key goes to curl as a config file on a pipe, never as an argument (visible in ps).
auth_config() { [[ -z "${API_KEY:-}" ]] || printf 'header = "Authorization: Bearer %s"\n' "$API_KEY"; }
listing=$(curl "${curl_args[@]}" --config <(auth_config) "${route[@]}" "$base_url/v1/models") ||
  fail "GET /v1/models for model $first_model"
served=$(printf '%s' "$listing" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["data"]))' 2>/dev/null) ||
  fail "GET /v1/models for model $first_model did not return a model list: $listing"
[[ "$served" -ge 1 ]] || fail "GET /v1/models for model $first_model lists no model"
echo "$first_model: serves $served model(s)"
echo "smoke check passed"
