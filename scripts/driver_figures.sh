#!/bin/sh
# The real driver's figures (README, "The real driver under load"): each row is a seeds
# process and a swarm on loopback, the seeds' and the swarm's folders merged into one.
# Usage: scripts/driver_figures.sh [ROW...]   rows: 200 500 1000 5000 overload (default: all)
# SWARM_FLAGS adds flags to every swarm (e.g. SWARM_FLAGS="--loops 1", "--latency 20ms").
# GOSSIPNET names the binary, OUT the folder, SEED_PORT and BASE_PORT the seeds' first port
# and the swarm's (to run beside another run of the script).
# Needs `cargo build --release`; writes results/driver/ROW/{seeds,swarm,merged}/.
set -eu
B=${GOSSIPNET:-target/release/gossipnet}
OUT=${OUT:-results/driver}
SEED_PORT=${SEED_PORT:-18080}
BASE_PORT=${BASE_PORT:-20000}
mkdir -p "$OUT"
printf '127.0.0.1:%s\n127.0.0.1:%s\n127.0.0.1:%s\n' \
    "$SEED_PORT" "$((SEED_PORT + 1))" "$((SEED_PORT + 2))" > "$OUT/config.txt"

row() {
    name=$1; shift
    dir="$OUT/$name"
    rm -rf "$dir"
    mkdir -p "$dir"
    # Every peer dials from 127.0.0.1: the seeds' limit of connections from one IP (1 024)
    # would turn the swarm's later peers away.
    "$B" seeds --config "$OUT/config.txt" --out "$dir/seeds" --quiet --connections-per-ip 20000 \
        > "$dir/seeds.txt" 2>&1 &
    seeds=$!
    sleep 1
    /usr/bin/env time -v "$B" swarm --config "$OUT/config.txt" --base-port "$BASE_PORT" \
        --out "$dir/swarm" --no-plot --quiet "$@" ${SWARM_FLAGS:-} > "$dir/swarm.txt" 2> "$dir/time.txt" || true
    kill -INT "$seeds"
    wait "$seeds" || true
    "$B" merge "$dir/seeds" "$dir/swarm" --out "$dir/merged" --no-plot > "$dir/merged.txt"
    echo "== $name: gossipnet swarm $*"
    grep -E "peers \(alive|deliveries|dead declarations|origin to last|driver|loop lag|overload|processes|time  " "$dir/swarm.txt" || true
    grep -E "Maximum resident" "$dir/time.txt" || true
    grep -E "seeds  " "$dir/merged.txt" || true
    # Removals before the swarm began to stop are removals of live peers.
    python3 - "$dir" <<'PY'
import glob, json, sys
d = sys.argv[1]
parts = glob.glob(f"{d}/swarm/processes/proc-*/summary.json") or [f"{d}/swarm/summary.json"]
stops = []
for p in parts:
    sw = json.load(open(p))
    stops.append(sw["started_at_unix_us"] / 1e6 + sw.get("stop_began_s", sw["wall_time_s"]))
stop = min(stops)
early = sum(1 for l in open(f"{d}/seeds/outputfile.log")
            if "removed, notice" in l and float(l.split(":")[0]) < stop)
print(f"  live peers removed by seeds before the swarm stopped: {early}")
PY
}

rows=${*:-200 500 1000 5000 overload}
for r in $rows; do
    case $r in
        200) row 200 --peers 200 --hash-iterations 1000 --join-interval 50ms --duration 100s ;;
        500) row 500 --peers 500 --hash-iterations 1000 --join-interval 50ms --duration 100s ;;
        1000) row 1000 --peers 1000 --gossip-count 1 --hash-iterations 1000 --join-interval 20ms --duration 60s ;;
        5000) row 5000 --procs 5 --peers 5000 --gossip-count 0 --hash-iterations 1000 --join-interval 10ms --duration 120s ;;
        overload) row overload --peers 600 --join-interval 10ms --duration 90s ;;
        *) echo "unknown row $r (200 500 1000 5000 overload)"; exit 2 ;;
    esac
done
