#!/usr/bin/env bash
# Pipeline side of a stage's post-deploy smoke check. Runs in the pipeline account (CodeBuildStep):
# assumes the stage's SmokeCheck trigger role, starts the stage's SmokeCheck CodeBuild project (which
# runs tools/smoke_check/smoke_check.sh inside the stage's VPC), waits for it, prints its log and
# fails unless the build succeeded.
#
# Environment: PROJECT_NAME, TRIGGER_ROLE_ARN (both from the stage's stack outputs), STAGE_REGION
# Optional:    POLL_SECONDS (20)
set -euo pipefail

: "${PROJECT_NAME:?PROJECT_NAME is required}"
: "${TRIGGER_ROLE_ARN:?TRIGGER_ROLE_ARN is required}"
: "${STAGE_REGION:?STAGE_REGION is required}"
poll_seconds="${POLL_SECONDS:-20}"

read -r AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN < <(
  aws sts assume-role --role-arn "$TRIGGER_ROLE_ARN" --role-session-name "smoke-check-${CODEBUILD_BUILD_NUMBER:-manual}" \
    --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text
)
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
export AWS_REGION="$STAGE_REGION" AWS_DEFAULT_REGION="$STAGE_REGION"

build_id=$(aws codebuild start-build --project-name "$PROJECT_NAME" --query 'build.id' --output text)
echo "started $build_id"
status="IN_PROGRESS"
while [[ "$status" == "IN_PROGRESS" ]]; do
  sleep "$poll_seconds"
  status=$(aws codebuild batch-get-builds --ids "$build_id" --query 'builds[0].buildStatus' --output text)
done

read -r log_group log_stream < <(
  aws codebuild batch-get-builds --ids "$build_id" \
    --query 'builds[0].logs.[groupName,streamName]' --output text
)
if [[ "$log_group" != "None" && "$log_stream" != "None" ]]; then
  aws logs get-log-events --log-group-name "$log_group" --log-stream-name "$log_stream" \
    --start-from-head --query 'events[].message' --output text || true
fi

echo "smoke check build $build_id: $status"
[[ "$status" == "SUCCEEDED" ]]
