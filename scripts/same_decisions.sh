#!/usr/bin/env bash
# Runs a matrix of simulated scenarios with two gossipnet binaries and compares every file of
# their run folders but summary.json (which holds wall times and the trace digest). Used when
# the engine changes: the protocol's decisions must not.
#   scripts/same_decisions.sh OLD_BINARY NEW_BINARY [WORKDIR]
# NEW_EXTRA="--removal trust --admission trust" passes flags to the new binary alone (to compare with a binary
# from before a flag changed a default).
set -euo pipefail
old=$1 new=$2 work=${3:-$(mktemp -d)}
scenarios=(
  "--seed 1"
  "--seed 2 --topology uniform:3"
  "--seed 3 --topology preferential:2 --peers 120 --duration 90s"
  "--seed 4 --latency 10ms..50ms --silent-fail 3@50s --restart 5@70s --crash 9@40s"
  "--seed 5 --partition 0-9|10-19@30s..90s --seed-crash 1@40s --duration 150s"
  "--seed 6 --peers 300 --duration 60s --gossip-count 2 --latency 5ms..40ms"
  "--seed 9 --seeds 5 --peers 60 --misses 2 --liveness-interval 7s --restart 4@30s --crash 4@20s"
  "--seed 10 --peers 150 --topology capacity:6,1.2,10 --duration 80s --silent-fail 0@30s"
)
fail=0
for i in "${!scenarios[@]}"; do
  s=${scenarios[$i]}
  # shellcheck disable=SC2086
  "$old" sim $s --hash-iterations 1 --no-plot --out "$work/old-$i" >/dev/null
  # shellcheck disable=SC2086
  "$new" sim $s ${NEW_EXTRA:-} --hash-iterations 1 --no-plot --out "$work/new-$i" >/dev/null
  for f in "$work/old-$i"/*; do
    name=$(basename "$f")
    [ "$name" = summary.json ] && continue
    if ! cmp -s "$f" "$work/new-$i/$name"; then
      echo "DIFF scenario $i ($s): $name"
      fail=1
    fi
  done
  if ! python3 -c 'import json,sys; a,b=(json.load(open(f))["outcome"] for f in sys.argv[1:]); sys.exit(a!=b)' \
      "$work/old-$i/summary.json" "$work/new-$i/summary.json"; then
    echo "DIFF scenario $i ($s): summary.json outcome"
    fail=1
  fi
  echo "scenario $i done: $s"
done
exit $fail
