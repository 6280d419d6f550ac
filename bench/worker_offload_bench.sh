#!/usr/bin/env bash
# Background worker, offload throughput: how many cold rows a second the worker's rounds seal, encrypt, upload to
# a local s5vector-node and swap for part pages, on an index whose cold tier is all local when the worker starts.
# Prints rows offloaded a second (overall and per round) and the rounds' length; asserts nothing.
# Usage: bench/worker_offload_bench.sh [rows (1000000)] [dimensions (128)] [max_rows_per_round (100000)]
# The rows are two days old and the window one day, so the build puts them all in the cold tier (lists = 0:
# automatic), locally (s5_url is not set at the build). Then s5_url is set with ALTER SYSTEM + reload and the
# worker turned on: its offload step runs each round, at most max_rows_per_round rows' worth of parts a round.
# S5V_BENCH_PORT (55436). As root it re-runs itself as the user s5vtest.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
bench_as_s5vtest "$@"

ROWS=${1:-1000000}
DIM=${2:-128}
BATCH=${3:-100000}
bench_cluster_start "${S5V_BENCH_PORT:-55436}" <<EOF
maintenance_work_mem = 1GB
synchronous_commit = off
max_wal_size = 4GB
shared_preload_libraries = 's5vector'
s5vector.worker_enabled = off
s5vector.naptime = 1
s5vector.max_rows_per_round = $BATCH
EOF
"$BINDIR/s5vector-node" --listen 127.0.0.1:0 --store "$DATA/store" >"$DATA/node.out" 2>&1 &
for _ in $(seq 100); do grep -q listening "$DATA/node.out" && break; sleep 0.1; done
URL=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$DATA/node.out")
[ -n "$URL" ] || { echo "the node did not start:"; cat "$DATA/node.out"; exit 1; }

q "CREATE EXTENSION s5vector"
q "CREATE TABLE t (id bigserial PRIMARY KEY, v vector($DIM), ts timestamptz)"
t0=$(now_ms)
# Clustered vectors (100 centres, uniform spread) written by awk and loaded with COPY: SQL generation of 1M rows
# takes far longer than the benchmark itself.
old_ts=$(q "SELECT now() - interval '2 days'")
awk -v n="$ROWS" -v d="$DIM" -v ts="$old_ts" 'BEGIN {
	srand(42)
	for (c = 0; c < 100; c++) for (j = 0; j < d; j++) centre[c, j] = rand() * 20 - 10
	for (i = 1; i <= n; i++) {
		c = i % 100
		line = "["
		for (j = 0; j < d; j++) line = line (j ? "," : "") sprintf("%.4f", centre[c, j] + (rand() - 0.5) * 7)
		print line "]\t" ts
	}
}' | psql -XAtq -v ON_ERROR_STOP=1 -c "COPY t (v, ts) FROM STDIN"
q "VACUUM ANALYZE t"
t1=$(now_ms)
q "CREATE INDEX t_v_idx ON t USING s5vector (v, ts) WITH (hot_window = '1 day')"
t2=$(now_ms)
echo "loaded $ROWS x $DIM in $((t1 - t0)) ms; built in $((t2 - t1)) ms: $(q "SELECT hot_elements || ' hot, ' || cold_rows || ' cold in ' || cold_lists || ' lists, ' || pg_size_pretty(local_bytes) FROM s5vector_index_stats('t_v_idx')")"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

q "ALTER SYSTEM SET s5vector.s5_url = '$URL'"
q "ALTER SYSTEM SET s5vector.worker_enabled = on"
q "SELECT pg_reload_conf()" >/dev/null
start=$(now_ms)
last=0
last_change=$start
# Until the offloaded count has not moved for 15 s (the rest are tails too short for a part).
while :; do
	sleep 1
	now=$(now_ms)
	remote=$(q "SELECT cold_remote_rows FROM s5vector_index_stats('t_v_idx')")
	if [ "$remote" != "$last" ]; then
		last=$remote
		last_change=$now
	fi
	[ $((now - last_change)) -lt 15000 ] || break
done
secs=$(awk -v a="$start" -v b="$last_change" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
echo "offloaded: $(q "SELECT cold_remote_rows || ' of ' || cold_rows || ' cold rows in ' || segments || ' segments, ' || pg_size_pretty(remote_bytes) || ' on S5' FROM s5vector_index_stats('t_v_idx')")"
echo "worker: $(q "SELECT rounds || ' rounds, last error: ' || coalesce(last_error, 'none') FROM s5vector_worker_status() WHERE database = 'postgres'")"
awk -v r="$last" -v s="$secs" -v b="$BATCH" 'BEGIN { printf "offload throughput: %d rows in %.1f s = %.0f rows/s (max_rows_per_round %d)\n", r, s, (s > 0 ? r / s : 0), b }'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
