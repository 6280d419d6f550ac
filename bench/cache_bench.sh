#!/usr/bin/env bash
# Segment cache over query streams that revisit lists: a pure cold index offloaded to a local s5vector-node, then,
# from a cold cache each time, streams of LIMIT 10 queries drawn at random from pools of distinct query vectors
# (a small pool revisits the same lists often, a large one rarely). Prints per stream the cache hit rate
# (cache_hits / (hits + misses) of the session, a hit being a memory or file hit), the p50 / p99 query time, and
# the offload and prewarm throughput in MB/s. Asserts nothing.
# Usage: bench/cache_bench.sh [rows (100000)] [dimensions (128)] [lists (200)] [queries a stream (300)]
# S5V_BENCH_PORT (55437), S5V_BENCH_PROBES (8), S5V_BENCH_NODE_DELAY_MS (0). As root it re-runs itself as s5vtest.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
bench_as_s5vtest "$@"

ROWS=${1:-100000}
DIM=${2:-128}
LISTS=${3:-200}
NQ=${4:-300}
PROBES=${S5V_BENCH_PROBES:-8}
bench_cluster_start "${S5V_BENCH_PORT:-55437}" <<EOF
maintenance_work_mem = 1GB
shared_preload_libraries = 's5vector'
s5vector.worker_enabled = off
s5vector.cache_size = '4GB'
# The query vector comes from a table without an index under enable_seqscan = off: its disabled-cost plan would
# be JIT-compiled on every query (about 230 ms), which is not what this measures.
jit = off
EOF
"$BINDIR/s5vector-node" --listen 127.0.0.1:0 --store "$DATA/store" --delay-ms "${S5V_BENCH_NODE_DELAY_MS:-0}" \
	>"$DATA/node.out" 2>&1 &
for _ in $(seq 100); do grep -q listening "$DATA/node.out" && break; sleep 0.1; done
URL=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$DATA/node.out")
[ -n "$URL" ] || { echo "the node did not start:"; cat "$DATA/node.out"; exit 1; }

# Clustered vectors (100 centres) for the rows, and 2000 query vectors near the same centres.
gen() {
	awk -v n="$1" -v d="$DIM" -v seed="$2" 'BEGIN {
		srand(42)
		for (c = 0; c < 100; c++) for (j = 0; j < d; j++) centre[c, j] = rand() * 20 - 10
		srand(seed)
		for (i = 1; i <= n; i++) {
			c = int(rand() * 100)
			line = "["
			for (j = 0; j < d; j++) line = line (j ? "," : "") sprintf("%.4f", centre[c, j] + (rand() - 0.5) * 7)
			print i "\t" line "]"
		}
	}'
}
q "CREATE EXTENSION s5vector"
q "CREATE TABLE t (id int, v vector($DIM))"
q "CREATE TABLE qv (id int, v vector($DIM))"
gen "$ROWS" 1 | psql -XAtq -v ON_ERROR_STOP=1 -c "COPY t FROM STDIN"
gen 2000 2 | psql -XAtq -v ON_ERROR_STOP=1 -c "COPY qv FROM STDIN"
q "SET s5vector.s5_url = ''; CREATE INDEX t_idx ON t USING s5vector (v) WITH (hot_window = '0', lists = $LISTS)"
# The same rows with the cold tier kept local, for comparison.
q "CREATE TABLE l AS SELECT * FROM t"
q "SET s5vector.s5_url = ''; CREATE INDEX l_idx ON l USING s5vector (v) WITH (hot_window = '0', lists = $LISTS, offload = off)"
q "ALTER SYSTEM SET s5vector.s5_url = '$URL'"
q "SELECT pg_reload_conf()" >/dev/null
sleep 1
t0=$(now_ms)
q "SELECT s5vector_offload('t_idx')" >/dev/null
t1=$(now_ms)
remote=$(q "SELECT remote_bytes FROM s5vector_index_stats('t_idx')")
echo "cache_bench: $ROWS x $DIM, $LISTS lists, probes $PROBES, $NQ queries a stream, node delay ${S5V_BENCH_NODE_DELAY_MS:-0} ms"
echo "offloaded: $(q "SELECT cold_remote_rows || ' of ' || cold_rows || ' rows in ' || segments || ' segments, ' || pg_size_pretty(remote_bytes) FROM s5vector_index_stats('t_idx')") in $((t1 - t0)) ms = $(awk -v b="$remote" -v ms="$((t1 - t0))" 'BEGIN { printf "%.1f", b / 1048576 / (ms / 1000) }') MB/s"
q "SELECT s5vector_cache_reset()" >/dev/null
t0=$(now_ms)
q "SELECT s5vector_prewarm('t_idx')" >/dev/null
t1=$(now_ms)
echo "prewarm (fetch, verify, decrypt, decode, write the cache): $((t1 - t0)) ms = $(awk -v b="$remote" -v ms="$((t1 - t0))" 'BEGIN { printf "%.1f", b / 1048576 / (ms / 1000) }') MB/s"

# One stream: NQ queries on table $2 (t: offloaded, l: local) from a pool of $1 query vectors, in one session, from
# a cold cache.
stream() {
	local pool=$1 tab=${2:-t}
	{
		echo "SET enable_seqscan = off; SET s5vector.probes = $PROBES;"
		echo "SELECT s5vector_cache_reset();"
		echo "\\timing on"
		awk -v n="$NQ" -v p="$pool" 'BEGIN { srand(7); for (i = 0; i < n; i++) printf "SELECT count(*) FROM (SELECT id FROM '"$tab"' ORDER BY v <-> (SELECT v FROM qv WHERE id = %d) LIMIT 10) s;\n", 1 + int(rand() * p) }'
		echo "\\timing off"
		echo "SELECT 'hits ' || cache_hits || ' misses ' || cache_misses FROM s5vector_index_stats('t_idx');"
	} | psql -XAt -v ON_ERROR_STOP=1 >"$DATA/stream.out"
	local hits misses
	read -r _ hits _ misses < <(grep '^hits ' "$DATA/stream.out")
	grep '^Time: ' "$DATA/stream.out" | awk '{print $2}' | sort -n >"$DATA/lat"
	local n p50 p99
	n=$(wc -l <"$DATA/lat")
	p50=$(awk -v n="$n" 'NR == int(n * 0.50) + 1 { printf "%.1f", $1 }' "$DATA/lat")
	p99=$(awk -v n="$n" 'NR == int(n * 0.99) + 1 { printf "%.1f", $1 }' "$DATA/lat")
	if [ "$tab" = l ]; then
		printf 'local cold tier, pool of %4d:               p50 %6s ms, p99 %6s ms\n' "$pool" "$p50" "$p99"
		return
	fi
	printf 'pool of %4d query vectors: hit rate %5.1f%% (%d hits, %d misses), p50 %6s ms, p99 %6s ms\n' "$pool" \
		"$(awk -v h="$hits" -v m="$misses" 'BEGIN { print (h + m) ? 100 * h / (h + m) : 0 }')" "$hits" "$misses" "$p50" "$p99"
}
if [ -n "${S5V_BENCH_EXPLAIN:-}" ]; then
	for tab in t l; do
		psql -XAt -c "SET enable_seqscan = off; SET s5vector.probes = $PROBES; EXPLAIN (ANALYZE, BUFFERS) SELECT count(*) FROM (SELECT id FROM $tab ORDER BY v <-> (SELECT v FROM qv WHERE id = 1) LIMIT 10) s"
	done
fi
for pool in 10 100 1000; do stream "$pool"; done
stream 1000 l
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
