#!/usr/bin/env bash
# Background worker benchmark: how many rows a round migrates per second (hot -> cold), and the p99 latency of
# concurrent searches (pgbench) before the migration (all rows hot), while the worker's rounds run, and after
# (all rows cold). Prints numbers; asserts nothing.
# Starts a throw-away cluster (shared_preload_libraries = 's5vector') with the PostgreSQL found through PG_CONFIG
# (the installed s5vector is used).
# Usage: bench/worker_bench.sh [rows (50000)] [dimensions (128)] [pgbench seconds (15)] [max_rows_per_round (10000)]
# The index has no age column and hot_window = '20 seconds': every row enters at the build and ages out of the
# window 20 s later, all at once, so the worker (enabled only then) starts with `rows` rows to move. The cold
# tier starts empty: its first 10000 rows wait in staging and then train the lists (lists = 0: automatic), inside
# the first rounds, as in production.
# S5V_BENCH_WORKER_COST_DELAY (default 0 = none; -1 = autovacuum_vacuum_cost_delay, 2 ms): s5vector.worker_cost_delay.
# As root it re-runs itself as the user s5vtest (PostgreSQL refuses to run as root).
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
bench_as_s5vtest "$@"

ROWS=${1:-50000}
DIM=${2:-128}
SECS=${3:-15}
BATCH=${4:-10000}
bench_cluster_start "${S5V_BENCH_PORT:-55433}" <<EOF
maintenance_work_mem = 512MB
synchronous_commit = off
shared_preload_libraries = 's5vector'
s5vector.worker_enabled = off
s5vector.naptime = 1
s5vector.max_rows_per_round = $BATCH
s5vector.worker_cost_delay = ${S5V_BENCH_WORKER_COST_DELAY:-0}
EOF

# Clustered random vectors: 100 centres, spread 0.35 (like test/tap/S5VTest.pm's vec_sql).
VEC=$(bench_vec "$DIM")
q "CREATE EXTENSION s5vector"
q "CREATE TABLE t (id bigserial PRIMARY KEY, v vector($DIM))"
q "INSERT INTO t (v) SELECT (SELECT $VEC FROM (SELECT i AS k) s) FROM generate_series(1, $ROWS) i"
t0=$(now_ms)
q "CREATE INDEX t_v_idx ON t USING s5vector (v vector_l2_ops) WITH (hot_window = '20 seconds')"
build_end=$(now_ms)
echo "build: $ROWS x $DIM in $((build_end - t0)) ms (all hot); max_rows_per_round = $BATCH"

cat >"$DATA/search.sql" <<EOF
\\set k random(1, 100000000)
SET enable_seqscan = off;
SELECT id FROM t ORDER BY v <-> (SELECT $VEC FROM (SELECT :k AS k) s) LIMIT 10;
EOF
# p50 / p99 of the search transactions of one pgbench run (per-transaction log, latency in microseconds).
search_run() {
	local name=$1
	rm -f "$DATA"/lat.*
	pgbench -n -c 2 -j 2 -T "$SECS" -f "$DATA/search.sql" -l --log-prefix="$DATA/lat" >"$DATA/pgbench.out" 2>&1 ||
		{ cat "$DATA/pgbench.out"; exit 1; }
	cat "$DATA"/lat.* | awk '{print $3}' | sort -n >"$DATA/lat.sorted"
	local n p50 p99
	n=$(wc -l <"$DATA/lat.sorted")
	p50=$(awk -v n="$n" 'NR == int(n * 0.50) + 1 { printf "%.2f", $1 / 1000 }' "$DATA/lat.sorted")
	p99=$(awk -v n="$n" 'NR == int(n * 0.99) + 1 { printf "%.2f", $1 / 1000 }' "$DATA/lat.sorted")
	printf '%-44s %7d searches  p50 %7s ms  p99 %7s ms\n' "$name" "$n" "$p50" "$p99"
	echo "$p99" >"$DATA/p99.$2"
}

search_run "searches, all rows hot, no worker:" before
# Wait until every row is past the window, then turn the worker on.
wait_ms=$((build_end + 21000 - $(now_ms)))
[ "$wait_ms" -gt 0 ] && sleep "$(awk -v m="$wait_ms" 'BEGIN { print m / 1000 }')"
q "ALTER SYSTEM SET s5vector.worker_enabled = on"
t0=$(now_ms)
q "SELECT pg_reload_conf()" >/dev/null
# Searches while the rounds run (the run is cut short by the migration's end only if it ends first: reported).
search_run "searches while the worker migrates:" during
during_end=$(now_ms)
hot_at_end=$(q "SELECT hot_elements FROM s5vector_index_stats('t_v_idx')")
while [ "$(q "SELECT hot_elements FROM s5vector_index_stats('t_v_idx')")" != 0 ]; do sleep 0.2; done
t1=$(now_ms)
echo "migration: $ROWS rows in $((t1 - t0)) ms = $(awk -v r="$ROWS" -v ms=$((t1 - t0)) 'BEGIN { printf "%.0f", r * 1000 / ms }') rows/s" \
	"($hot_at_end rows were still hot when the searches during it ended after $((during_end - t0)) ms)"
q "SELECT 'worker: ' || rounds || ' rounds, ' || rows_moved || ' rows, last error: ' || coalesce(last_error, 'none') FROM s5vector_worker_status()"
q "SELECT 'index: ' || hot_elements || ' hot, ' || cold_rows || ' cold in ' || cold_lists || ' lists, ' || pg_size_pretty(local_bytes) FROM s5vector_index_stats('t_v_idx')"
search_run "searches, all rows cold, worker idle:" after
echo "p99 while migrating / before: $(awk -v a="$(cat "$DATA/p99.during")" -v b="$(cat "$DATA/p99.before")" 'BEGIN { printf "%.2fx", a / b }');" \
	"/ after: $(awk -v a="$(cat "$DATA/p99.during")" -v b="$(cat "$DATA/p99.after")" 'BEGIN { printf "%.2fx", a / b }')"
q "SELECT 'verify: ' || string_agg(check_name || '=' || coalesce(ok::text, 'null'), ', ') FROM s5vector_verify('t_v_idx')"
