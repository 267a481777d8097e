#!/usr/bin/env bash
# One step of a make target as one line: "<label> ... done in 12 s". The step's own output goes to
# a log; it is shown live only once the step has run for PHASE_SHOW_AFTER seconds (default 20; "never"
# for steps whose output is no progress report), so a slow first install shows pip's progress and a
# fast one stays quiet; and in full when the step fails.
#
# Usage: tools/phase.sh "<label>" <command> [args...]     (logs under PHASE_LOG_DIR, default .make/logs)
set -uo pipefail

label=$1
shift
log_dir=${PHASE_LOG_DIR:-.make/logs}
show_after=${PHASE_SHOW_AFTER:-20}
mkdir -p "$log_dir"
log="$log_dir/$(printf '%s' "$label" | tr -cs 'A-Za-z0-9' '-' | sed 's/^-//; s/-$//').log"

started=$SECONDS
printf '%s ...' "$label"
"$@" >"$log" 2>&1 </dev/null &
pid=$!
follower=
while kill -0 "$pid" 2>/dev/null; do
  if [[ -z $follower && $show_after != never ]] && ((SECONDS - started >= show_after)); then
    printf ' still running after %d s; its output follows (log: %s)\n' "$show_after" "$log"
    tail -n +1 -f --pid="$pid" "$log" | sed -u 's/^/    /' &
    follower=$!
  fi
  sleep 0.2
done
wait "$pid"
status=$?
[[ -n $follower ]] && wait "$follower"
elapsed=$((SECONDS - started))

if ((status == 0)); then
  if [[ -n $follower ]]; then
    printf '%s: done in %d s\n' "$label" "$elapsed"
  else
    printf ' done in %d s\n' "$elapsed"
  fi
  exit 0
fi
if [[ -z $follower ]]; then
  printf ' FAILED\n'
  sed 's/^/    /' "$log" >&2
fi
printf '%s: failed after %d s (exit %d); full log: %s\n' "$label" "$elapsed" "$status" "$log" >&2
exit "$status"
