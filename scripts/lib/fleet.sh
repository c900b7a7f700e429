# Sourced by the measure-* scripts: starts the Graph and SCIM simulators, one coordinator
# (`dirsync serve`) and $WORKERS workers, each its own process on the run's own database,
# queue names, Redis keys and ports, and registers one tenant ($TENANT). Everything is removed
# on exit (logs kept with KEEP=1, the database with KEEP_DB=1).
# Inputs: USERS, WORKERS, GROUPS (groups in the tenant), NESTING (their nesting depth),
# SCIM_RATE (per-org requests/s, 0 = none), BUILD=0 (no cargo build), PERF=1 (record the coordinator and the first
# worker with `perf record -g`, kept in the log directory), HEAPTRACK=1 (record the coordinator's
# heap with heaptrack, kept there too; read it with `heaptrack_print`), BIN_DIR (take the
# binaries from there instead of target/release, e.g. a copy of an earlier build, to compare
# two builds back to back on the same machine; implies BUILD=0).
set -euo pipefail
USERS=${USERS:-300000}
WORKERS=${WORKERS:-2}
GROUPS_N=${GROUPS:-0}
NESTING=${NESTING:-0}
scripts/services >/dev/null
# BUILD=0 uses the binaries already in target/release.
if [ "${BUILD:-1}" = 1 ] && [ -z "${BIN_DIR:-}" ]; then
  cargo build --release -q -p dirsync-coordinator -p dirsync-worker -p dirsync-load-tests --bins
fi
B=${BIN_DIR:-$PWD/target/release}
RUN=measure$$
WORK=$(mktemp -d)
export DATABASE_URL=postgres://root@127.0.0.1:5432/$RUN
export DIRSYNC_PREFIX=$RUN
export DIRSYNC_HTTP_ADDR=127.0.0.1:18480
export DIRSYNC_API_URL=http://$DIRSYNC_HTTP_ADDR/api/v1
export DIRSYNC_SCIM_RATE_PER_ORG=${SCIM_RATE:-0}
# The simulators are on the loopback interface: the only hosts tenants may name here.
export DIRSYNC_ALLOWED_HOSTS=127.0.0.1
export RUST_LOG=${RUST_LOG:-warn}
ORG=0ae87ade-8c8a-4952-af08-318798958d0c
PIDS=()

cleanup() {
  # The children too: under perf or heaptrack the program is a child of the pid started.
  for p in "${PIDS[@]}"; do pkill -INT -P "$p" 2>/dev/null || true; kill -INT "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP_DB:-}" ]; then
    echo "database kept: $RUN" >&2
  else
    psql -q -h 127.0.0.1 -U root -d test -c "DROP DATABASE IF EXISTS $RUN WITH (FORCE)" || true
  fi
  for q in $(rabbitmqctl -q list_queues name 2>/dev/null | grep "^$RUN" || true); do
    rabbitmqctl -q delete_queue "$q" >/dev/null 2>&1 || true
  done
  redis-cli --scan --pattern "$RUN*" | xargs -r redis-cli del >/dev/null || true
  if [ -n "${KEEP:-}${PERF:-}${HEAPTRACK:-}" ]; then echo "logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

peak_mb() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
now_ms() { date +%s%3N; }
# Runs a program in the background, under `perf record` when PERF=1 and $2 is "profile".
start() { # log profile program args...
  local log=$1 profile=$2
  shift 2
  if [ -n "${HEAPTRACK:-}" ] && [ "$log" = "$WORK/coordinator.log" ]; then
    heaptrack -o "$WORK/coordinator.heaptrack" "$@" >"$log" 2>&1 &
  elif [ -n "${PERF:-}" ] && [ "$profile" = profile ]; then
    perf record -q -F 499 -g -o "$WORK/$(basename "$log" .log).perf" -- "$@" >"$log" 2>&1 &
  else
    "$@" >"$log" 2>&1 &
  fi
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

psql -q -h 127.0.0.1 -U root -d test -c "CREATE DATABASE $RUN"
export DIRSYNC_SECRETS_KEY=$("$B/dirsync" secrets-key generate)
start "$WORK/graph.log" no "$B/graph-sim" serve --port 18081 --tenant-id contoso \
  --domain contoso.example --client-id app --client-secret s3cret --users "$USERS" \
  --groups "$GROUPS_N" --nesting-depth "$NESTING"
start "$WORK/scim.log" no "$B/scim-sim" serve --port 18082 --org "$ORG" --token tok
"$B/dirsync" migrate
export DIRSYNC_API_TOKEN=$("$B/dirsync" admin-token create --name measure 2>/dev/null)
start "$WORK/coordinator.log" profile "$B/dirsync" serve
COORD=$LAST_PID
WORKER_PIDS=()
for i in $(seq 1 "$WORKERS"); do
  if [ "$i" = 1 ]; then p=profile; else p=no; fi
  WORKER_HTTP_ADDR=127.0.0.1:$((19464 + i)) start "$WORK/worker$i.log" $p "$B/dirsync-worker"
  WORKER_PIDS+=("$LAST_PID")
done
port_up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 1 1500); do
  curl -sf "http://$DIRSYNC_HTTP_ADDR/healthz" >/dev/null && port_up 18081 && port_up 18082 && break
  sleep 0.2
done

TENANT=$("$B/dirsync" --json tenant add --custom --authorize-later --name Measure \
  --entra-tenant-id contoso --graph-login-url http://127.0.0.1:18081 \
  --graph-base-url http://127.0.0.1:18081 --client-id app --client-secret s3cret \
  --scim-token tok --scim-url "http://127.0.0.1:18082/identity/scim/$ORG/v2" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

# The run id of the tenant's last completed sync (empty before the first), read from the
# API with curl: the cycles poll it several times a second, and a `dirsync` or python3
# process a call (the CLI loads the system's root certificates first) costs tens of
# milliseconds of CPU, taken from the fleet being measured.
last_sync_run() {
  local status
  status=$(curl -sf -H "Authorization: Bearer $DIRSYNC_API_TOKEN" \
    "$DIRSYNC_API_URL/tenants/$TENANT/status?limit=1" | tr -d ' \n') || return 1
  if [[ $status =~ \"last_sync\":\{\"run_id\":\"([^\"]+)\" ]]; then echo "${BASH_REMATCH[1]}"; fi
}

# Peak RSS of the coordinator and the workers, as one JSON line.
peak_rss() {
  echo "{\"step\":\"peak rss\",\"users\":$USERS,\"coordinator_mb\":$(peak_mb "$(rss_pid "$COORD")"),\"workers_mb\":[$(for p in "${WORKER_PIDS[@]}"; do peak_mb "$(rss_pid "$p")"; echo; done | paste -sd,)]}"
}
# The program's own pid when it runs under perf.
rss_pid() { pgrep -P "$1" -n 2>/dev/null || echo "$1"; }
# Per worker: batches started and their mean wait in the queue (publish to start), from its
# /metrics: a long wait means the workers are the bottleneck, a short one the coordinator.
worker_lag() {
  for i in $(seq 1 "$WORKERS"); do
    curl -sf "http://127.0.0.1:$((19464 + i))/metrics" | awk -v w="$i" '
      /^dirsync_batch_lag_seconds_sum/ { s += $2 } /^dirsync_batch_lag_seconds_count/ { c += $2 }
      END { printf "{\"step\":\"queue wait\",\"worker\":%d,\"batches\":%d,\"mean_wait_ms\":%.0f}\n", w, c, c ? s / c * 1000 : 0 }'
  done
}
# CPU seconds (user + system) each part of the fleet used since the start, as one JSON line:
# where a saturated machine's two cores went.
cpu_s() { # pids...
  local total=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
  done
  echo "scale=1; $total / $(getconf CLK_TCK)" | bc
}
PG_CPU_START=$(cpu_s $(pgrep -u postgres))
MQ_CPU_START=$(cpu_s $(pgrep -u rabbitmq))
REDIS_CPU_START=$(cpu_s $(pgrep redis-server))
cpu_report() {
  local sims
  sims=$(cpu_s $(pgrep -f "graph-sim serve --port 18081") $(pgrep -f "scim-sim serve --port 18082"))
  echo "{\"step\":\"cpu seconds\",\"coordinator\":$(cpu_s "$(rss_pid "$COORD")"),\"workers\":$(cpu_s $(for p in "${WORKER_PIDS[@]}"; do rss_pid "$p"; done)),\"simulators\":$sims,\"postgresql\":$(echo "$(cpu_s $(pgrep -u postgres)) - $PG_CPU_START" | bc),\"rabbitmq\":$(echo "$(cpu_s $(pgrep -u rabbitmq)) - $MQ_CPU_START" | bc),\"redis\":$(echo "$(cpu_s $(pgrep redis-server)) - $REDIS_CPU_START" | bc)}"
}
