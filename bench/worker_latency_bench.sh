#!/usr/bin/env bash
# Search latency while the background worker's steps run against while it idles, in the same minutes and on the
# same index: a steady flow of rows ages out of the window (RATE rows a second), the worker (naptime 1 s) migrates
# them in short rounds and idles in between, and 2 pgbench clients search all the time. Each search is classed by
# whether a worker step was running at any moment of it (s5vector_worker_status().current_step, sampled every
# 50 ms). Prints p50 / p99 of both classes and their ratio (the issue's target: p99 during a round at most 1.5x),
# and the rows migrated a second. Asserts nothing.
# Starts a throw-away cluster (shared_preload_libraries = 's5vector') with the PostgreSQL found through PG_CONFIG
# (the installed s5vector is used).
# Usage: bench/worker_latency_bench.sh [cold rows (40000)] [hot rows (20000)] [dimensions (128)] [seconds (60)]
#        [rows aging out a second (150)]
# S5V_BENCH_WORKER_COST_DELAY (default 0 = none; -1 = autovacuum_vacuum_cost_delay, 2 ms): s5vector.worker_cost_delay.
# As root it re-runs itself as the user s5vtest (PostgreSQL refuses to run as root).
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
bench_as_s5vtest "$@"

COLD=${1:-40000}
HOT=${2:-20000}
DIM=${3:-128}
SECS=${4:-60}
RATE=${5:-150}
bench_cluster_start "${S5V_BENCH_PORT:-55434}" <<EOF
maintenance_work_mem = 512MB
synchronous_commit = off
shared_preload_libraries = 's5vector'
s5vector.worker_enabled = off
s5vector.naptime = 1
s5vector.max_rows_per_round = 100000
s5vector.worker_cost_delay = ${S5V_BENCH_WORKER_COST_DELAY:-0}
EOF

# Clustered random vectors: 100 centres, spread 0.35 (like test/tap/S5VTest.pm's vec_sql).
VEC=$(bench_vec "$DIM")
q "CREATE EXTENSION s5vector"
q "CREATE TABLE t (id bigserial PRIMARY KEY, v vector($DIM), ts timestamptz)"
# Cold rows: two days old. Hot rows: one every 1/RATE s from now on (they age out in that order below).
q "INSERT INTO t (v, ts) SELECT (SELECT $VEC FROM (SELECT i AS k) s), now() - interval '2 days' FROM generate_series(1, $COLD) i"
base=$(q "SELECT extract(epoch FROM now())")
q "INSERT INTO t (v, ts) SELECT (SELECT $VEC FROM (SELECT $COLD + i AS k) s), to_timestamp($base + i / $RATE.0) FROM generate_series(1, $HOT) i"
q "CREATE INDEX t_v_idx ON t USING s5vector (v, ts) WITH (hot_window = '1 day')"
q "SELECT 'built: ' || hot_elements || ' hot, ' || cold_rows || ' cold in ' || cold_lists || ' lists' FROM s5vector_index_stats('t_v_idx')"

cat >"$DATA/search.sql" <<EOF
\\set k random(1, 100000000)
SET enable_seqscan = off;
SELECT id FROM t ORDER BY v <-> (SELECT $VEC FROM (SELECT :k AS k) s) LIMIT 10;
EOF
# From now on, the hot rows age out at RATE a second: the window ends where the first hot row is now.
now=$(q "SELECT extract(epoch FROM now())")
window=$(awk -v n="$now" -v b="$base" 'BEGIN { printf "%.3f", n - b }')
q "ALTER INDEX t_v_idx SET (hot_window = '$window seconds')"
q "ALTER SYSTEM SET s5vector.worker_enabled = on"
q "SELECT pg_reload_conf()" >/dev/null
hot0=$(q "SELECT hot_elements FROM s5vector_index_stats('t_v_idx')")
# The worker's state every 50 ms: epoch ms and the step running ('-' = none).
while :; do
	echo "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint || ' ' || coalesce(nullif(current_step, ''), '-') FROM s5vector_worker_status() WHERE database = 'postgres';"
	sleep 0.05
done | psql -XAtq >"$DATA/states" 2>/dev/null &
spid=$!
sleep 2
pgbench -n -c 2 -j 2 -T "$SECS" -f "$DATA/search.sql" -l --log-prefix="$DATA/lat" >"$DATA/pgbench.out" 2>&1 ||
	{ cat "$DATA/pgbench.out"; exit 1; }
kill $spid 2>/dev/null || true
pkill -P $$ sleep 2>/dev/null || true
hot1=$(q "SELECT hot_elements FROM s5vector_index_stats('t_v_idx')")
q "ALTER SYSTEM SET s5vector.worker_enabled = off"
q "SELECT pg_reload_conf()" >/dev/null
echo "cost delay: $(q "SHOW s5vector.worker_cost_delay") (autovacuum_vacuum_cost_delay $(q "SHOW autovacuum_vacuum_cost_delay")), cost limit $(q "SHOW s5vector.worker_cost_limit")"
echo "migrated while searching: $((hot0 - hot1)) rows in about $((SECS + 2)) s = $(((hot0 - hot1) / (SECS + 2))) rows/s (rows aged out at $RATE/s)"
q "SELECT 'worker: ' || rounds || ' rounds, last error: ' || coalesce(last_error, 'none') FROM s5vector_worker_status()"
cat "$DATA"/lat.* >"$DATA/lat.all"
python3 - "$DATA/states" "$DATA/lat.all" <<'EOF'
import bisect, sys
samples = []
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) == 2 and parts[0].isdigit():
        samples.append((int(parts[0]), parts[1] != '-'))
samples.sort()
times = [t for t, _ in samples]
busy = {True: [], False: []}
for line in open(sys.argv[2]):
    f = line.split()
    lat_us, end_ms = int(f[2]), int(f[4]) * 1000 + int(f[5]) / 1000
    start_ms = end_ms - lat_us / 1000
    # Busy when a sample inside the search (or the one just before it began) saw a step running.
    i = max(bisect.bisect_left(times, start_ms) - 1, 0)
    b = False
    while i < len(times) and times[i] <= end_ms:
        b |= samples[i][1]
        i += 1
    busy[b].append(lat_us / 1000)
def pct(v, p):
    v = sorted(v)
    return v[min(int(len(v) * p), len(v) - 1)] if v else float('nan')
share = sum(1 for _, s in samples if s) / max(len(samples), 1)
print(f"worker busy in {share * 100:.0f}% of {len(samples)} samples")
for b, name in ((False, 'searches while the worker idles:'), (True, 'searches while a worker step runs:')):
    print(f"{name:40s} {len(busy[b]):6d}  p50 {pct(busy[b], 0.5):7.2f} ms  p99 {pct(busy[b], 0.99):7.2f} ms")
if busy[True] and busy[False]:
    print(f"p99 while a step runs / while idle: {pct(busy[True], 0.99) / pct(busy[False], 0.99):.2f}x")
EOF
q "SELECT 'verify: ' || string_agg(check_name || '=' || coalesce(ok::text, 'null'), ', ') FROM s5vector_verify('t_v_idx')"
