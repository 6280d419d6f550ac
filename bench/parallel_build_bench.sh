#!/usr/bin/env bash
# Serial against parallel CREATE INDEX on one table: builds interleaved (serial, parallel, serial, ...), each with its
# wall time, the load average at its start, and the user CPU time of every process that took part (the leader
# backend and the parallel workers, sampled from /proc while the build runs), then the median ratio and the
# recall@10 of the last index of each kind against exact answers.
#
#   bench/parallel_build_bench.sh
#
# Environment: S5V_BENCH_ROWS (100000), S5V_BENCH_DIM (128), S5V_BENCH_M (16), S5V_BENCH_EF (64),
# S5V_BENCH_WORKERS (1), S5V_BENCH_ROUNDS (3), S5V_BENCH_QUERIES (50), S5V_BENCH_MWM (1GB),
# S5V_BENCH_PORT (55440), PG_CONFIG. Install s5vector first (make && make install).
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
bench_as_s5vtest "$@"

rows=${S5V_BENCH_ROWS:-100000}
dim=${S5V_BENCH_DIM:-128}
m=${S5V_BENCH_M:-16}
ef=${S5V_BENCH_EF:-64}
workers=${S5V_BENCH_WORKERS:-1}
rounds=${S5V_BENCH_ROUNDS:-3}
nq=${S5V_BENCH_QUERIES:-50}
mwm=${S5V_BENCH_MWM:-1GB}

bench_cluster_start "${S5V_BENCH_PORT:-55440}" <<EOF
maintenance_work_mem = '$mwm'
max_worker_processes = 8
max_parallel_workers = 8
max_parallel_maintenance_workers = 8
EOF
postmaster=$(head -1 "$DATA/pg/postmaster.pid")

q "CREATE EXTENSION s5vector"
echo "loading $rows x $dim ..."
q "CREATE TABLE t (id int, v vector($dim))"
q "INSERT INTO t SELECT k, $(bench_vec "$dim") FROM generate_series(1, $rows) k"
q "ALTER TABLE t SET (parallel_workers = $workers)"
q "VACUUM ANALYZE t"
q "CREATE TABLE queries AS SELECT k AS qid, $(bench_vec "$dim") AS v FROM generate_series($rows + 1, $rows + $nq) k"
q "CREATE TABLE exact AS SELECT qid, (SELECT array_agg(id) FROM (SELECT id FROM t ORDER BY t.v <-> queries.v LIMIT 10) s) AS ids FROM queries"

# User CPU seconds of the children of the postmaster that ran during a build: "pid seconds title" lines, from
# samples every 0.1 s (a process's last sample before it exits: short by the time since that sample).
sample_cpu() {
	local out=$1
	: >"$out"
	while :; do
		for p in $(pgrep -P "$postmaster"); do
			if [ -r "/proc/$p/stat" ]; then
				ut=$(awk '{print $14}' "/proc/$p/stat" 2>/dev/null || true)
				title=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null || true)
				[ -n "$ut" ] && echo "$p $ut $title" >>"$out"
			fi
		done
		sleep 0.1
	done
}

hz=$(getconf CLK_TCK)
# One build: prints "wall_ms load1 cpu_leader cpu_workers cpu_total" (user seconds; leader and workers sampled,
# the total exact).
build() {
	local nworkers=$1 samples="$DATA/samples"
	local load
	load=$(cut -d' ' -f1 /proc/loadavg)
	local c0 c1
	c0=$(awk '{print $16}' "/proc/$postmaster/stat")
	sample_cpu "$samples" &
	local sampler=$!
	local t0 t1
	t0=$(now_ms)
	psql -XAtq -v ON_ERROR_STOP=1 -c "SET application_name = 'pbuild_bench'; SET max_parallel_maintenance_workers = $nworkers;
CREATE INDEX t_idx ON t USING s5vector (v) WITH (m = $m, ef_construction = $ef)"
	t1=$(now_ms)
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	# The user CPU time of every child the postmaster reaped meanwhile (the workers, and the backend once psql
	# has gone): the build's total, exact.
	sleep 1
	c1=$(awk '{print $16}' "/proc/$postmaster/stat")
	# The last sample of each process: the leader backend and the workers start with the build (psql connects for
	# it), so their whole CPU time is the build's.
	awk -v hz="$hz" '
		{ last[$1] = $2; t = ""; for (i = 3; i <= NF; i++) t = t " " $i; title[$1] = t }
		END {
			lead = 0; work = 0
			for (p in last) {
				s = last[p] / hz
				if (title[p] ~ /parallel worker/) work += s
				else if (title[p] ~ /CREATE INDEX|pbuild_bench|idle/) lead += s
			}
			printf "%.2f %.2f\n", lead, work
		}' "$samples" | {
		read -r lead work
		echo "$((t1 - t0)) $load $lead $work $(awk -v a="$c0" -v b="$c1" -v hz="$hz" 'BEGIN {printf "%.2f", (b - a) / hz}')"
	}
}

recall() {
	q "SET s5vector.ef_search = 40; SET enable_seqscan = off;
SELECT round(avg(hits) / 10.0, 4) FROM (SELECT e.qid, (SELECT count(*) FROM unnest(e.ids) x
WHERE x = ANY (ARRAY(SELECT id FROM t ORDER BY t.v <-> qq.v LIMIT 10))) AS hits FROM exact e JOIN queries qq USING (qid)) s"
}

serial_ms=()
parallel_ms=()
printf '%-9s %-5s %9s %6s %10s %11s %9s\n' kind round wall_ms load1 cpu_leader cpu_workers cpu_total
for r in $(seq 1 "$rounds"); do
	for kind in serial parallel; do
		n=0
		[ "$kind" = parallel ] && n=$workers
		q "SET client_min_messages = warning; DROP INDEX IF EXISTS t_idx"
		q "CHECKPOINT"
		read -r ms load lead work total < <(build "$n")
		printf '%-9s %-5s %9s %6s %10s %11s %9s\n' "$kind" "$r" "$ms" "$load" "$lead" "$work" "$total"
		if [ "$kind" = serial ]; then serial_ms+=("$ms"); else parallel_ms+=("$ms"); fi
		if [ "$r" = "$rounds" ]; then
			echo "  recall@10 (ef_search 40) of the $kind index: $(recall)"
		fi
	done
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
ms=$(median "${serial_ms[@]}")
mp=$(median "${parallel_ms[@]}")
echo "median serial ${ms} ms, parallel ($workers worker(s) + leader) ${mp} ms, ratio $(awk -v a="$mp" -v b="$ms" 'BEGIN {printf "%.3f", a / b}')"
