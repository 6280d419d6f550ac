#!/usr/bin/env bash
# Write-path benchmark: insert throughput with 1 and 4 pgbench clients, VACUUM with nothing dead, VACUUM after
# 10% deletes, and how long an INSERT issued during that VACUUM waits. Prints numbers; asserts nothing.
# Starts a throw-away cluster with the PostgreSQL found through PG_CONFIG (the installed s5vector is used).
# Usage: bench/vacuum_insert_bench.sh [rows (100000)] [dimensions (128)] [pgbench seconds (20)] [all|insert|vacuum]
# ("insert" stops after the insert throughput, "vacuum" skips it). S5V_BENCH_DEAD_PCT (default 10): the share of
# rows deleted before the second VACUUM. The peak anonymous memory (RssAnon) of the VACUUM backend is sampled.
# As root it re-runs itself as the user s5vtest (PostgreSQL refuses to run as root).
# S5V_BENCH_ENGINES (default: "s5vector pgvector" when pgvector's vector.control is installed in the same
# PostgreSQL, else "s5vector"): the engines measured, one after the other in one cluster, each in its own database
# (both define a type named vector), same data, same clients. S5V_BENCH_MWM (default 256MB): maintenance_work_mem.
# S5V_BENCH_SYNC=off sets synchronous_commit = off (single-row insert transactions otherwise wait on WAL fsync,
# which hides how far the index itself lets inserts run in parallel).
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
bench_as_s5vtest "$@"

ROWS=${1:-100000}
DIM=${2:-128}
SECS=${3:-20}
PHASES=${4:-all}
bench_cluster_start "${S5V_BENCH_PORT:-55432}" <<EOF
maintenance_work_mem = ${S5V_BENCH_MWM:-256MB}
synchronous_commit = ${S5V_BENCH_SYNC:-on}
EOF
ENGINES=${S5V_BENCH_ENGINES:-}
if [ -z "$ENGINES" ]; then
	ENGINES=s5vector
	[ -f "$($PG_CONFIG --sharedir)/extension/vector.control" ] && ENGINES="s5vector pgvector"
fi

# Clustered random vectors: 100 centres, spread 0.35 (like tests/S5VTest.pm's vec_sql).
VEC=$(bench_vec "$DIM")
# recall@10 of the index against an exact scan, over the queries in table qs.
recall10() {
	psql -XAtq -v ON_ERROR_STOP=1 <<EOS
CREATE TEMP TABLE approx AS SELECT qs.i, ARRAY(SELECT id FROM t ORDER BY t.v <-> qs.v LIMIT 10) AS ids FROM qs;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
CREATE TEMP TABLE exact AS SELECT qs.i, ARRAY(SELECT id FROM t ORDER BY t.v <-> qs.v LIMIT 10) AS ids FROM qs;
SELECT round(avg((SELECT count(*) FROM unnest(a.ids) x WHERE x = ANY (e.ids)) / 10.0), 3) FROM approx a JOIN exact e USING (i);
EOS
}

run_engine() {
E=$1
case $E in
s5vector) EXT=s5vector AM=s5vector DB=bench_s5vector ;;
pgvector) EXT=vector AM=hnsw DB=bench_pgvector ;;
*) echo "unknown engine $E" >&2; return 1 ;;
esac
export PGDATABASE=$DB
createdb "$DB"
q "CREATE EXTENSION $EXT"
q "CREATE TABLE t (id bigserial PRIMARY KEY, v vector($DIM))"
q "INSERT INTO t (v) SELECT (SELECT $VEC FROM (SELECT i AS k) s) FROM generate_series(1, $ROWS) i"
t0=$(now_ms)
q "CREATE INDEX t_v_idx ON t USING $AM (v vector_l2_ops)"
echo "$E build: $ROWS x $DIM in $(($(now_ms) - t0)) ms, index $(q "SELECT pg_size_pretty(pg_relation_size('t_v_idx'))")"

cat >"$DATA/insert.sql" <<EOF
\\set k random(1, 100000000)
INSERT INTO t (v) SELECT $VEC FROM (SELECT :k AS k) s;
EOF
CLIENTS="1 4"
[ "$PHASES" = vacuum ] && CLIENTS=""
for c in $CLIENTS; do
	pgbench -n -c $c -j $c -T "$SECS" -f "$DATA/insert.sql" >"$DATA/pgbench.out" 2>/dev/null &
	bpid=$!
	# What the inserting backends wait for (sampled): "running" is on CPU, Lock:page the graph lock,
	# LWLock:BufferContent a buffer lock.
	: >"$DATA/waits"
	sleep 1
	for _ in $(seq 1 $((SECS * 5 - 10))); do
		q "SELECT coalesce(wait_event_type || ':' || wait_event, 'running') FROM pg_stat_activity WHERE query LIKE 'INSERT INTO t %' AND state = 'active'" >>"$DATA/waits"
		sleep 0.2
	done
	wait $bpid
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$DATA/pgbench.out")
	echo "$E insert TPS, $c client(s): $tps; backend states sampled: $(sort "$DATA/waits" | uniq -c | sort -rn | awk '{printf "%s %s, ", $2, $1}')"
done
[ "$PHASES" = vacuum ] || [ "$E" != s5vector ] || q "SELECT 'reachability after inserts: ' || detail FROM s5vector_verify('t_v_idx') WHERE check_name = 'reachability'"
[ "$PHASES" = insert ] && return 0

q "CREATE TABLE qs AS SELECT i, (SELECT $VEC FROM (SELECT 500000000 + i AS k) s) AS v FROM generate_series(1, 50) i"
echo "$E recall@10 before the deletes (50 queries, default ef_search): $(recall10)"
t0=$(now_ms)
q "VACUUM t"
echo "$E VACUUM, nothing dead: $(($(now_ms) - t0)) ms"

DEAD=${S5V_BENCH_DEAD_PCT:-10}
q "DELETE FROM t WHERE id % 1000 < $((DEAD * 10))"
t0=$(now_ms)
psql -XAtq -d "$DB" -c "VACUUM t" &
vpid=$!
# Peak anonymous memory of the VACUUM backend (its private memory: maintenance_work_mem is spent here).
(
	peak=0
	for _ in $(seq 1 20); do
		bpid=$(q "SELECT pid FROM pg_stat_progress_vacuum LIMIT 1")
		[ -n "$bpid" ] && break
		sleep 0.05
	done
	while [ -n "$bpid" ] && [ -r "/proc/$bpid/status" ]; do
		kb=$(awk '/^RssAnon:/ {print $2}' "/proc/$bpid/status" 2>/dev/null || echo 0)
		[ "${kb:-0}" -gt "$peak" ] && peak=$kb
		[ -z "$(q "SELECT pid FROM pg_stat_progress_vacuum WHERE pid = $bpid")" ] && break
		sleep 0.1
	done
	echo "$peak" >"$DATA/vacuum_peak_kb"
) &
mpid=$!
# Wait until VACUUM works on the index, then time one INSERT.
for _ in $(seq 1 600); do
	[ "$(q "SELECT phase FROM pg_stat_progress_vacuum")" = "vacuuming indexes" ] && break
	sleep 0.05
done
sleep 0.5
i0=$(now_ms)
q "INSERT INTO t (v) SELECT $VEC FROM (SELECT 123456789 AS k) s"
i1=$(now_ms)
running=$(q "SELECT count(*) FROM pg_stat_progress_vacuum")
wait $vpid
t1=$(now_ms)
wait $mpid || true
echo "$E VACUUM, $DEAD% dead: $((t1 - t0)) ms (peak RssAnon of its backend: $(cat "$DATA/vacuum_peak_kb" 2>/dev/null || echo ?) kB; maintenance_work_mem ${S5V_BENCH_MWM:-256MB})"
echo "$E INSERT during that VACUUM: $((i1 - i0)) ms (VACUUM still running afterwards: $running)"
echo "$E recall@10 on the survivors after that VACUUM: $(recall10)"
[ "$E" != s5vector ] || q "SELECT 'reachability after VACUUM: ' || detail FROM s5vector_verify('t_v_idx') WHERE check_name = 'reachability'"
}

for e in $ENGINES; do
	run_engine "$e"
done
