#!/bin/sh
# Processing time (README, "Processing time"): does the simulator predict how long a message
# takes to reach every peer of a real swarm whose peers hash every copy they receive?
# For each run seed: `gossipnet seeds` and `gossipnet swarm --hash-per-peer` on loopback, then
# `gossipnet sim --processing digest,loops:N` of the same network (the digest timed on this
# machine, N the swarm's event loops); prints both medians of origin to last delivery and
# their ratio, per run and over all runs' messages together.
# Usage: scripts/processing_check.sh [RUN_SEED...]   (default: 7)
# Environment: ITERATIONS (500), PEERS (40), LOOPS (the swarm's event loops; default one per
# core), JOIN_MS (500: peers start this far apart), INTERVAL_S (20: between a peer's
# messages), COUNT (3: messages a peer), LATENCY (100us: loopback), BASE_PORT (27200; the
# seeds take 27180..27182), NICE (0; e.g. -10 as root, so that other work on the machine
# takes less from the swarm and the timing of the digest), GOSSIPNET
# (target/release/gossipnet).
# Needs `cargo build --release`; writes results/processing/seed-S/{seeds,swarm,sim}/.
set -eu
B="nice -n ${NICE:-0} ${GOSSIPNET:-target/release/gossipnet}"
ITERATIONS=${ITERATIONS:-500}
PEERS=${PEERS:-40}
LOOPS=${LOOPS:-$(nproc)}
JOIN_MS=${JOIN_MS:-500}
INTERVAL_S=${INTERVAL_S:-20}
COUNT=${COUNT:-3}
LATENCY=${LATENCY:-100us}
BASE_PORT=${BASE_PORT:-27200}
OUT=results/processing
mkdir -p "$OUT"
S0=$((BASE_PORT - 20))
printf '127.0.0.1:%s\n127.0.0.1:%s\n127.0.0.1:%s\n' $S0 $((S0 + 1)) $((S0 + 2)) > "$OUT/config.txt"
# Joins, then COUNT messages an interval apart from each peer, then 10 s to spare.
DURATION=$(( PEERS * JOIN_MS / 1000 + COUNT * INTERVAL_S + 10 ))s
PROTOCOL="--hash-iterations $ITERATIONS --join-interval ${JOIN_MS}ms"
PROTOCOL="$PROTOCOL --gossip-interval ${INTERVAL_S}s --gossip-count $COUNT"
echo "processing check: $PEERS peers, 3 seeds, $ITERATIONS digest iterations, joins ${JOIN_MS} ms" \
     "apart, $COUNT messages each ${INTERVAL_S} s apart, $DURATION; $(nproc) cores," \
     "the swarm on $LOOPS event loops; nice ${NICE:-0}"

run() {
    s=$1
    dir="$OUT/seed-$s"
    rm -rf "$dir"
    mkdir -p "$dir"
    $B seeds --config "$OUT/config.txt" --out "$dir/seeds" --quiet --seed "$s" \
        > "$dir/seeds.txt" 2>&1 &
    seeds=$!
    sleep 1
    # The machine's busy CPU time (USER_HZ ticks), to tell how much other processes took.
    head -1 /proc/stat > "$dir/stat-before"
    # shellcheck disable=SC2086
    $B swarm --config "$OUT/config.txt" --base-port "$BASE_PORT" --peers "$PEERS" \
        --hash-per-peer --loops "$LOOPS" --seed "$s" --duration "$DURATION" $PROTOCOL \
        --out "$dir/swarm" --no-plot --quiet > "$dir/swarm.txt" 2>&1
    head -1 /proc/stat > "$dir/stat-after"
    kill -INT "$seeds"
    wait "$seeds" || true
    # shellcheck disable=SC2086
    $B sim --seed "$s" --peers "$PEERS" --duration "$DURATION" --no-faults \
        --latency "$LATENCY" $PROTOCOL --processing "digest,loops:$LOOPS" \
        --out "$dir/sim" --no-plot > "$dir/sim.txt"
    grep -E "^  processing" "$dir/sim.txt" | sed "s/^ */  seed $s sim: /"
}

for s in ${*:-7}; do
    run "$s"
done

python3 - "$OUT" ${*:-7} <<'PY'
import csv, json, os, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]

def busy_s(path):
    """Busy CPU seconds of the whole machine so far, from a /proc/stat line."""
    v = [int(x) for x in open(path).read().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")

def spreads(d):
    """Origin to last delivery of each message of run folder d, seconds."""
    last, orig = {}, {}
    with open(f"{d}/deliveries.csv") as f:
        for r in csv.DictReader(f):
            m = r["message_id"]
            last[m] = max(last.get(m, 0.0), float(r["delivered_at_s"]))
            orig[m] = float(r["originated_at_s"])
    return [last[m] - orig[m] for m in last]

def line(label, real, sim, extra=""):
    r, s = statistics.median(real), statistics.median(sim)
    print(f"  {label}: real median {r:.4f} s ({len(real)} messages), "
          f"simulated {s:.4f} s ({len(sim)}), ratio simulated/real {s / r:.2f}{extra}")

every_real, every_sim = [], []
for s in seeds:
    d = f"{out}/seed-{s}"
    real, sim = spreads(f"{d}/swarm"), spreads(f"{d}/sim")
    sw = json.load(open(f"{d}/swarm/summary.json"))
    sm = json.load(open(f"{d}/sim/summary.json"))
    cov = sw["outcome"]["coverage"] * 100
    machine = busy_s(f"{d}/stat-after") - busy_s(f"{d}/stat-before")
    # The seeds' CPU in the same span is a few tens of ms: not counted.
    others = max(0.0, machine - sw["cpu_time_s"]) / (sw["wall_time_s"] * os.cpu_count())
    extra = (f"; real coverage {cov:.1f} %, {sw['digests_computed']} digests, "
             f"{sw['cpu_time_s'] * 1e6 / sw['digests_computed']:.0f} µs of CPU a digest, "
             f"loop lag p99 {sw['loop_lag_p99_ms']:.0f} ms, "
             f"other processes {others * 100:.0f} % of the machine; "
             f"sim {sm['parameters']['processing']}")
    line(f"seed {s}", real, sim, extra)
    every_real += real
    every_sim += sim
if len(seeds) > 1:
    line("all", every_real, every_sim)
PY
