#!/usr/bin/env bash
# The soak of issue #14 item 7 (not in CI: it needs root for network namespaces and runs for
# an hour). A 5-node cluster of real `fednode start` processes, each in its own network
# namespace on one bridge (10.77.0.<i>, this machine only), for --minutes (default 60):
#   - steady inference load through every node (curl to each node's API, in its namespace),
#   - a proposal every --propose-every seconds (default 3) through a random live node,
#   - kill -9 of a random node every --kill-every seconds (default 90), restarted after 5 s
#     (node-1 is never killed: its RSS over the whole run is the leak measure),
#   - two partitions of --partition-secs (default 60): at 1/3 of the run node-5 alone, at 2/3
#     {node-1, node-2} | {node-3, node-4, node-5}. A partition is blackhole routes inside the
#     namespaces (ip route add blackhole 10.77.0.<j>/32), so packets between the two sides are
#     dropped in both directions while each side keeps talking to itself.
# At the end the load stops, the partitions are healed, every node is up, and
# scripts/soak-check.ts checks: no conflicting signature in any audit log, equal registry
# hashes at an equal decided height, every acknowledged proposal in every node's log, RSS
# growth of every process within the bound, zero stuck requests. It prints a summary (JSON
# too, in <dir>/summary.json) and exits 1 when a check fails.
#
#   sudo scripts/soak.sh [--minutes N] [--dir D] [--kill-every S] [--propose-every S]
#                        [--partition-secs S] [--rss-growth-mib M] [--keep]
# Run from a built checkout (npm run build): the script copies dist/ into <dir> first, so
# rebuilding the checkout while it runs changes nothing under it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

MINUTES=60
DIR=""
KILL_EVERY=90
PROPOSE_EVERY=3
PARTITION_SECS=60
RSS_GROWTH_MIB=96
KEEP=0
NODES=5
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) MINUTES=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    --kill-every) KILL_EVERY=$2; shift 2 ;;
    --propose-every) PROPOSE_EVERY=$2; shift 2 ;;
    --partition-secs) PARTITION_SECS=$2; shift 2 ;;
    --rss-growth-mib) RSS_GROWTH_MIB=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n 2,24p "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for v in MINUTES KILL_EVERY PROPOSE_EVERY PARTITION_SECS RSS_GROWTH_MIB; do
  [[ "${!v}" =~ ^[0-9]+$ ]] && [ "${!v}" -gt 0 ] || { echo "soak.sh: --$(echo "$v" | tr 'A-Z_' 'a-z-') must be a positive integer, got '${!v}'" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "soak.sh: needs root (network namespaces)" >&2; exit 2; }
[ -f "$ROOT/dist/cli/main.js" ] && [ -f "$ROOT/dist/scripts/soak-check.js" ] || { echo "soak.sh: build first (npm run build)" >&2; exit 2; }
command -v curl >/dev/null || { echo "soak.sh: needs curl" >&2; exit 2; }

[ -n "$DIR" ] || DIR=$(mktemp -d /tmp/fednode-soak-XXXXXX)
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
APP="$DIR/app"
mkdir -p "$APP" "$DIR/run"
cp -r "$ROOT/dist" "$APP/dist"
cp "$ROOT/package.json" "$APP/package.json"
ln -sfn "$ROOT/node_modules" "$APP/node_modules"
FEDNODE=("$(command -v node)" "$APP/dist/cli/main.js")

PREFIX=soak$$            # namespace and link names unique to this run
BR=${PREFIX}br
P2P_PORT=4101            # same ports in every namespace: each node has its own loopback
API_PORT=7411
CONTROL_PORT=7412
MODEL=simulated-7b
T0=$(date +%s)
END=$((T0 + MINUTES * 60))

say() { echo "[soak $(date -u +%H:%M:%S)] $*" | tee -a "$DIR/soak.log" >&2; }
ns() { echo "${PREFIX}n$1"; }
inns() { local i=$1; shift; ip netns exec "$(ns "$i")" "$@"; }
cli() { local i=$1; shift; inns "$i" "${FEDNODE[@]}" "$@" --data-dir "$DIR/node-$i"; }

CHILDREN=()
cleanup() {
  set +e
  for p in "${CHILDREN[@]}"; do kill "$p" 2>/dev/null; done
  for i in $(seq 1 $NODES); do
    [ -f "$DIR/run/node-$i.pid" ] && kill -9 "$(cat "$DIR/run/node-$i.pid")" 2>/dev/null
    ip netns del "$(ns "$i")" 2>/dev/null
  done
  ip link del "$BR" 2>/dev/null
  [ "$KEEP" = 1 ] || [ "${SOAK_FAILED:-0}" = 1 ] || rm -rf "$APP"
}
trap cleanup EXIT

# --- network: one namespace per node on a bridge ---------------------------------------------
ip link add "$BR" type bridge
ip link set "$BR" up
for i in $(seq 1 $NODES); do
  ip netns add "$(ns "$i")"
  ip link add "${PREFIX}v$i" type veth peer name eth0 netns "$(ns "$i")"
  ip link set "${PREFIX}v$i" master "$BR" up
  inns "$i" ip addr add "10.77.0.$i/24" dev eth0
  inns "$i" ip link set eth0 up
  inns "$i" ip link set lo up
done

start_node() {
  local i=$1
  ip netns exec "$(ns "$i")" "${FEDNODE[@]}" start --json --data-dir "$DIR/node-$i" >>"$DIR/node-$i.out" 2>>"$DIR/node-$i.log" &
  local pid=$!
  disown "$pid" # its kill -9 is the point, not a job to report
  echo "$pid" >"$DIR/run/node-$i.pid"
  echo "$(date +%s) $i $pid" >>"$DIR/starts.txt"
  # ready = the control API answers
  local t=0
  until cli "$i" status --json >/dev/null 2>&1; do
    sleep 0.5; t=$((t + 1))
    [ $t -lt 120 ] || { say "node-$i not ready within 60 s (see $DIR/node-$i.log)"; return 1; }
  done
}

common=(--no-mdns --api-port "$API_PORT" --control-port "$CONTROL_PORT" --simulated-model "$MODEL" --simulated-tps 400)
say "dir $DIR, $MINUTES min, kill every ${KILL_EVERY}s, propose every ${PROPOSE_EVERY}s, partitions of ${PARTITION_SECS}s"
cli 1 init --new-cluster --name node-1 --listen "/ip4/10.77.0.1/tcp/$P2P_PORT" --consensus-audit "$DIR/node-1.audit" "${common[@]}" >/dev/null
start_node 1
for i in $(seq 2 $NODES); do
  token=$(cli 1 invite --json | jq -r .token)
  cli "$i" join "$token" --name "node-$i" --listen "/ip4/10.77.0.$i/tcp/$P2P_PORT" --consensus-audit "$DIR/node-$i.audit" "${common[@]}" >/dev/null
  start_node "$i"
  t=0
  until [ "$(cli "$i" status --json 2>/dev/null | jq -r .consensus.admission.admitted)" = true ]; do
    sleep 0.5; t=$((t + 1)); [ $t -lt 120 ] || { say "node-$i not admitted within 60 s"; exit 1; }
  done
  say "node-$i admitted"
done

# --- load: one request loop per node --------------------------------------------------------
# Each line: <start s> <node> <http code> <curl exit> <seconds>. curl exit 28 = no answer in
# 120 s: a stuck request. 7 = refused (node down), 52/56 = cut by a kill: expected under chaos.
load_loop() {
  local i=$1 n=0
  while [ "$(date +%s)" -lt "$END" ]; do
    n=$((n + 1))
    local s; s=$(date +%s)
    local out rc=0
    out=$(inns "$i" curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 120 \
      -H 'content-type: application/json' \
      -d "{\"model\":\"$MODEL\",\"max_tokens\":24,\"messages\":[{\"role\":\"user\",\"content\":\"soak $i $n\"}]}" \
      "http://127.0.0.1:$API_PORT/v1/chat/completions") || rc=$?
    echo "$s $i ${out%% *} $rc ${out##* }" >>"$DIR/requests.txt"
    sleep 0.3
  done
}
for i in $(seq 1 $NODES); do load_loop "$i" & CHILDREN+=($!); done

# --- proposals ------------------------------------------------------------------------------
# Acknowledged = `fednode propose` exited 0 (the commit receipt came back): one line
# <name> <height> <node> in acked.txt. Others are counted, not checked (they may commit later).
propose_loop() {
  local n=0
  while [ "$(date +%s)" -lt "$END" ]; do
    n=$((n + 1))
    local i=$(((RANDOM % NODES) + 1)) name="soak-$n" out
    if out=$(cli "$i" propose pattern --name "$name" --content "soak pattern $n" --wait 20s --json 2>>"$DIR/propose.err"); then
      echo "$name $(echo "$out" | jq -r .height) $i" >>"$DIR/acked.txt"
    else
      echo "$name $i $?" >>"$DIR/unacked.txt"
    fi
    sleep "$PROPOSE_EVERY"
  done
}
propose_loop & CHILDREN+=($!)

# --- RSS samples ----------------------------------------------------------------------------
rss_loop() {
  while [ "$(date +%s)" -lt "$END" ]; do
    for i in $(seq 1 $NODES); do
      local p; p=$(cat "$DIR/run/node-$i.pid" 2>/dev/null) || continue
      local r; r=$(ps -o rss= -p "$p" 2>/dev/null | tr -d ' ') || continue
      [ -n "$r" ] && echo "$(date +%s) $i $p $r" >>"$DIR/rss.txt"
    done
    sleep 15
  done
}
rss_loop & CHILDREN+=($!)

# --- chaos: kill -9 and partitions ----------------------------------------------------------
partition() { # partition "<side A nodes>" "<side B nodes>"
  local a b
  for a in $1; do for b in $2; do
    inns "$a" ip route add blackhole "10.77.0.$b/32"
    inns "$b" ip route add blackhole "10.77.0.$a/32"
  done; done
  echo "$(date +%s) partition $1 | $2" >>"$DIR/chaos.txt"
  say "partition {$1} | {$2}"
}
heal() {
  local i
  for i in $(seq 1 $NODES); do
    inns "$i" ip route show type blackhole | awk '{print $2}' | while read -r dst; do inns "$i" ip route del blackhole "$dst"; done
  done
  echo "$(date +%s) heal" >>"$DIR/chaos.txt"
  say "healed"
}
P1=$((T0 + MINUTES * 20)); P2=$((T0 + MINUTES * 40))
p1_done=0; p2_done=0; healed_at=0; next_kill=$((T0 + KILL_EVERY)); kills=0
while [ "$(date +%s)" -lt "$END" ]; do
  now=$(date +%s)
  if [ $p1_done = 0 ] && [ "$now" -ge $P1 ]; then partition "5" "1 2 3 4"; p1_done=1; healed_at=$((now + PARTITION_SECS)); fi
  if [ $p2_done = 0 ] && [ "$now" -ge $P2 ]; then partition "1 2" "3 4 5"; p2_done=1; healed_at=$((now + PARTITION_SECS)); fi
  if [ $healed_at -gt 0 ] && [ "$now" -ge $healed_at ]; then heal; healed_at=0; fi
  if [ "$now" -ge $next_kill ]; then
    v=$(((RANDOM % (NODES - 1)) + 2))
    kill -9 "$(cat "$DIR/run/node-$v.pid")" 2>/dev/null || true
    kills=$((kills + 1))
    echo "$now kill $v" >>"$DIR/chaos.txt"
    say "kill -9 node-$v (#$kills)"
    sleep 5
    start_node "$v" || { SOAK_FAILED=1; say "restart of node-$v failed"; exit 1; }
    echo "$(date +%s) restart $v" >>"$DIR/chaos.txt"
    next_kill=$((next_kill + KILL_EVERY))
  fi
  sleep 1
done
[ $healed_at -eq 0 ] || heal

# --- settle and check -----------------------------------------------------------------------
say "load over; waiting for the load loops and the last proposal"
for p in "${CHILDREN[@]}"; do wait "$p" || true; done
CHILDREN=()
# Every node level: same decided height on all (bounded wait: 120 s).
t=0
while :; do
  hs=$(for i in $(seq 1 $NODES); do cli "$i" status --json 2>/dev/null | jq -r '.consensus.decidedHeight' || echo x; done | sort -u | wc -l)
  [ "$hs" = 1 ] && break
  t=$((t + 1)); [ $t -lt 120 ] || { say "nodes not level after 120 s"; break; }
  sleep 1
done
for i in $(seq 1 $NODES); do
  cli "$i" status --json >"$DIR/status-$i.json" 2>/dev/null || echo '{}' >"$DIR/status-$i.json"
  top=$(jq -r '.consensus.decidedHeight // 0' "$DIR/status-$i.json")
  : >"$DIR/log-$i.jsonl"
  from=1
  while [ "$from" -le "$top" ]; do
    cli "$i" log --from "$from" --limit 1000 --json >>"$DIR/log-$i.jsonl"
    echo >>"$DIR/log-$i.jsonl"
    from=$((from + 1000))
  done
done
rc=0
node "$APP/dist/scripts/soak-check.js" --dir "$DIR" --nodes "$NODES" --minutes "$MINUTES" --kills "$kills" --rss-growth-mib "$RSS_GROWTH_MIB" || rc=$?
[ $rc = 0 ] || SOAK_FAILED=1
exit $rc
