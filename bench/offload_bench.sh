#!/usr/bin/env bash
# Offload benchmark (issue 9): a pure cold index built with S5 configured (CREATE INDEX uploads its cold part to a
# local s5vector-node), the same built without S5 and then offloaded, and the same with its cold tier local. Prints
# local bytes per cold row of each (pg_relation_size; after offload also without the pages it freed), build and
# offload MB/s, cold-cache and warm-cache query p50 at S5V_BENCH_PROBES on the first, the local-tier p50, fetch MB/s.
# Starts its own cluster and node in a temporary directory (as user s5vtest when run as root).
# S5V_BENCH_KEEP=1 leaves the cluster and node running (PGHOST = the work directory, printed) for profiling.
# Env: S5V_BENCH_ROWS (100000), S5V_BENCH_DIM (128), S5V_BENCH_LISTS (100), S5V_BENCH_QUERIES (30),
#      S5V_BENCH_PROBES (8), S5V_BENCH_NODE_DELAY_MS (0), PG_CONFIG.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
bench_as_s5vtest "$@"
ROWS=${S5V_BENCH_ROWS:-100000}
ROWS=${ROWS:-100000}
DIM=${S5V_BENCH_DIM:-128}
DIM=${DIM:-128}
LISTS=${S5V_BENCH_LISTS:-100}
LISTS=${LISTS:-100}
NQ=${S5V_BENCH_QUERIES:-30}
NQ=${NQ:-30}
PROBES=${S5V_BENCH_PROBES:-8}
PROBES=${PROBES:-8}
DELAY=${S5V_BENCH_NODE_DELAY_MS:-0}
DELAY=${DELAY:-0}
W=$(mktemp -d /tmp/s5v-offload-bench.XXXXXX)
PORT=$((20000 + RANDOM % 20000))
export PGHOST=$W PGPORT=$PORT PGDATABASE=postgres

"$BINDIR/s5vector-node" --listen 127.0.0.1:0 --store "$W/store" --delay-ms "$DELAY" >"$W/node.out" 2>&1 &
NODE_PID=$!
[ "${S5V_BENCH_KEEP:-0}" = 1 ] || trap 'kill $NODE_PID 2>/dev/null || true; "$BINDIR/pg_ctl" -D "$W/data" -m immediate stop >/dev/null 2>&1 || true' EXIT
for _ in $(seq 100); do grep -q listening "$W/node.out" && break; sleep 0.1; done
URL=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$W/node.out")

"$BINDIR/initdb" -D "$W/data" -A trust >/dev/null
cat >>"$W/data/postgresql.conf" <<EOF
port = $PORT
unix_socket_directories = '$W'
listen_addresses = ''
shared_preload_libraries = 's5vector'
shared_buffers = '512MB'
maintenance_work_mem = '1GB'
autovacuum = off
# The background worker would offload, compact and migrate while the benchmark measures.
s5vector.worker_enabled = off
s5vector.s5_url = '$URL'
s5vector.cache_size = '4GB'
EOF
"$BINDIR/pg_ctl" -D "$W/data" -l "$W/pg.log" -w start >/dev/null
P() { "$BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 "$@"; }

echo "offload_bench: $ROWS x $DIM, $LISTS lists, probes $PROBES, $NQ queries, node delay ${DELAY} ms"
P <<EOF
CREATE EXTENSION s5vector;
CREATE EXTENSION pg_freespacemap;
CREATE TABLE r (id int, v vector($DIM));
INSERT INTO r SELECT i, (SELECT array_agg(sin(i * 0.7 + j * 1.3) * 5 + cos(i * 0.013 * j))::real[]::vector($DIM)
  FROM generate_series(1, $DIM) j) FROM generate_series(1, $ROWS) i;
CREATE TABLE l AS SELECT * FROM r;
CREATE TABLE o AS SELECT * FROM r;
EOF
# r_idx: built with S5 configured (CREATE INDEX uploads the cold part); o_idx: built without S5, then offloaded;
# l_idx: offload = off (the local cold tier).
t0=$(date +%s.%N)
P -c "CREATE INDEX r_idx ON r USING s5vector (v) WITH (hot_window = '0', lists = $LISTS)"
t1=$(date +%s.%N)
P -c "CREATE INDEX l_idx ON l USING s5vector (v) WITH (hot_window = '0', lists = $LISTS, offload = off)"
P -c "SET s5vector.s5_url = ''" -c "CREATE INDEX o_idx ON o USING s5vector (v) WITH (hot_window = '0', lists = $LISTS)"
before=$(P -c "SELECT pg_relation_size('o_idx')")
t2=$(date +%s.%N)
moved=$(P -c "SELECT s5vector_offload('o_idx')")
t3=$(date +%s.%N)
read -r rsize rremote rsegs rbytes <<<"$(P -F' ' -c "SELECT pg_relation_size('r_idx'), cold_remote_rows, segments, remote_bytes FROM s5vector_index_stats('r_idx')")"
read -r size free remote_rows remote_bytes <<<"$(P -F' ' -c "SELECT pg_relation_size('o_idx'), (SELECT count(*) FROM pg_freespace('o_idx') WHERE avail > 0), cold_remote_rows, remote_bytes FROM s5vector_index_stats('o_idx')")"
awk -v n="$ROWS" -v rs="$rsize" -v rr="$rremote" -v sg="$rsegs" -v rb="$rbytes" -v bt="$(echo "$t1 - $t0" | bc)" 'BEGIN {
	printf "build with S5 (direct upload): %.1f s, %d of %d rows remote in %d segments, %.1f MB/s of blobs over the whole build\n", bt, rr, n, sg, rb / bt / 1e6;
	printf "local bytes per cold row, built with S5: %.1f (pg_relation_size)\n", rs / n }'
awk -v b="$before" -v s="$size" -v f="$free" -v n="$ROWS" -v m="$moved" -v rb="$remote_bytes" -v t="$(echo "$t3 - $t2" | bc)" 'BEGIN {
	printf "built without S5: %.1f bytes/row; offloaded %d of %d rows in %.1f s: %.1f MB/s of vectors, %.1f MB/s of blobs\n", b / n, m, n, t, m * '"$DIM"' * 4 / t / 1e6, rb / t / 1e6;
	printf "local bytes per cold row after offload: %.1f (pg_relation_size), %.1f without the %d pages offload freed\n", s / n, (s - f * 8192) / n, f }'

# Queries: one psql session per mode, \timing lines parsed.
run_mode() { # $1 table, $2 reset cache before each query (1/0)
	local t=$1 reset=$2
	{
		echo "SET enable_seqscan = off; SET s5vector.probes = $PROBES;"
		for i in $(seq 1 "$NQ"); do
			qid=$((i * 7919 % ROWS + 1))
			echo "SELECT v AS q FROM $t WHERE id = $qid \\gset"
			[ "$reset" = 1 ] && echo "SELECT s5vector_cache_reset() \\g /dev/null"
			echo "\\timing on"
			echo "SELECT id FROM $t ORDER BY v <-> :'q' LIMIT 10 \\g /dev/null"
			echo "\\timing off"
		done
		# This session's fetch counters: segments fetched from the node (cache misses) over the queries.
		echo "SELECT cache_misses FROM s5vector_index_stats('${t}_idx') \\g $W/misses_${t}_$reset"
	} | P 2>&1 | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]}'
}
P -c "SELECT s5vector_prewarm('l_idx')" >/dev/null 2>&1 || true
local_p50=$(run_mode l 0)
cold_p50=$(run_mode r 1)
P -c "SELECT s5vector_cache_reset()" >/dev/null
t4=$(date +%s.%N)
segs=$(P -c "SELECT s5vector_prewarm('r_idx')")
t5=$(date +%s.%N)
warm_p50=$(run_mode r 0)
awk -v rb="$remote_bytes" -v t="$(echo "$t5 - $t4" | bc)" -v s="$segs" 'BEGIN { printf "prewarm: %d segments, %.1f MB/s fetched (download, verify, decrypt, decode, cache)\n", s, rb / t / 1e6 }'
echo "query p50 (ms, LIMIT 10, probes $PROBES): local cold tier $local_p50, offloaded cold cache $cold_p50, offloaded warm cache $warm_p50"
awk -v m="$(cat "$W/misses_r_1" 2>/dev/null || echo 0)" -v q="$NQ" 'BEGIN { printf "cold cache: %.1f segments fetched a query (one parallel batch: up to 64 transfers at once)\n", m / q }'
[ "${S5V_BENCH_KEEP:-0}" = 1 ] && echo "kept: PGHOST=$W PGPORT=$PORT (node pid $NODE_PID)"
exit 0
