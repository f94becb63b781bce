#!/usr/bin/env bash
# The long simnet run: SEEDS seeds (default 10,000) for each n in NS (default
# 4 7 10 16 31 50), f = floor((n-1)/3) Byzantine nodes, HEIGHTS heights each (default 200),
# every fault (churn included) and every Byzantine behaviour, through `fednode simnet`, which
# runs the PRODUCTION consensus driver over the simulator (simnet/driver-world.ts).
#
#   scripts/simnet-long.sh            run (resumable: rerun to continue where it stopped)
#   scripts/simnet-long.sh summary    totals per n from what has finished
#
# Hours to days of CPU (n = 50 costs the most: see `npm run bench -- simnet`), so it runs at nice 19 and
# in chunks: seeds go round-robin over n (CHUNK_<n> seeds per turn, cheap n in bigger chunks)
# so that a partial run covers every n. Each finished chunk appends one JSON summary line
# (seeds, violations with replay commands, commits, rounds per height, speed) to
# $OUT/n<n>.jsonl; a chunk cut short leaves nothing and is rerun. Stop it with kill on the
# script's pid (its children are in its process group).
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-10000}
HEIGHTS=${HEIGHTS:-200}
NS=${NS:-"4 7 10 16 31 50"}
OUT=${OUT:-/tmp/simnet-long-driver}
mkdir -p "$OUT"

chunk_of() {
  case "$1" in
    4) echo "${CHUNK_4:-200}" ;;
    7) echo "${CHUNK_7:-100}" ;;
    10) echo "${CHUNK_10:-50}" ;;
    16) echo "${CHUNK_16:-20}" ;;
    31) echo "${CHUNK_31:-4}" ;;
    *) echo "${CHUNK_50:-2}" ;;
  esac
}

# Seeds already finished for n (sum of seedsRun over its lines).
done_seeds() {
  local f="$OUT/n$1.jsonl"
  [ -s "$f" ] || { echo 0; return; }
  node -e 'let s=0;for(const l of require("fs").readFileSync(process.argv[1],"utf8").split("\n"))if(l.trim())s+=JSON.parse(l).seedsRun;console.log(s)' "$f"
}

summary() {
  for n in $NS; do
    f="$OUT/n$n.jsonl"
    [ -s "$f" ] || { echo "n=$n: nothing finished"; continue; }
    node -e '
      const rows = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
      const sum = (k) => rows.reduce((a, r) => a + r[k], 0);
      const seeds = sum("seedsRun"), commits = sum("commits");
      const first = Math.min(...rows.map((r) => r.firstSeed)), last = Math.max(...rows.map((r) => r.firstSeed + r.seedsRun - 1));
      const rph = rows.reduce((a, r) => a + r.roundsPerHeight * r.commits, 0) / Math.max(1, commits);
      const bad = rows.flatMap((r) => r.violations.map((v) => `seed ${v.seed} ${v.kind} h${v.height}: ${v.detail}`));
      console.log(`n=${rows[0].nodes} f=${rows[0].f} byzantine=${rows[0].byzantine} heights=${rows[0].heights}: seeds ${seeds} (${first}..${last}), safety violations ${sum("safetyViolations")}, liveness violations ${sum("livenessViolations")} (seeds ${sum("seedsWithViolations")}), commits ${commits}, rounds/height ${rph.toFixed(3)}, max round ${Math.max(...rows.map((r) => r.maxRound))}, sim s ${sum("simSeconds").toFixed(0)}, real s ${sum("realSeconds").toFixed(0)} (${(sum("simSeconds") / Math.max(1e-9, sum("realSeconds"))).toFixed(1)}x)`);
      for (const b of bad.slice(0, 20)) console.log("  " + b);
    ' "$f"
  done
}

if [ "${1:-}" = "summary" ]; then summary; exit 0; fi

while :; do
  progressed=0
  for n in $NS; do
    have=$(done_seeds "$n")
    [ "$have" -lt "$SEEDS" ] || continue
    c=$(chunk_of "$n")
    [ $((have + c)) -le "$SEEDS" ] || c=$((SEEDS - have))
    tmp="$OUT/.n$n.part"
    # Exit status 1 means "violations found": they are in the JSON line, keep going.
    nice -n 19 npx tsx cli/main.ts simnet --nodes "$n" --seeds "$c" --heights "$HEIGHTS" --seed $((1 + have)) --json > "$tmp" 2>> "$OUT/stderr.log" || [ $? -eq 1 ]
    if [ -s "$tmp" ]; then cat "$tmp" >> "$OUT/n$n.jsonl"; fi
    rm -f "$tmp"
    progressed=1
  done
  [ "$progressed" -eq 1 ] || break
done
summary
