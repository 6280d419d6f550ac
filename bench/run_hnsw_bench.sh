#!/bin/bash
# Run bench/hnsw_bench.py against a throwaway PostgreSQL cluster: initdb in a temporary directory,
# start it on a private socket (no TCP), create one database with s5vector and, when pgvector is
# installed, one with pgvector's `vector` (the two extensions both define a type `vector`, so they
# cannot share a database), run the benchmark with the arguments given here, stop the cluster and
# remove it.
#
#   bench/run_hnsw_bench.sh [hnsw_bench.py options]
#   bench/run_hnsw_bench.sh --dataset fashion-mnist --json /tmp/fmnist.json
#
# Environment: PG_CONFIG (pg_config), S5V_BENCH_PORT (55432), S5V_BENCH_USER (pgtest: the user the
# cluster runs as when this runs as root; created if missing), S5V_BENCH_SHARED_BUFFERS (2GB),
# S5V_BENCH_KEEP=1 keeps the cluster directory, S5V_BENCH_SCRIPT (hnsw_bench.py) the benchmark run in it
# (bench/run_ivf_bench.sh sets ivf_bench.py), PYTHON (/usr/bin/python3). Install s5vector first (make && make
# install).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
pg_config=${PG_CONFIG:-pg_config}
bindir=$("$pg_config" --bindir)
sharedir=$("$pg_config" --sharedir)
port=${S5V_BENCH_PORT:-55432}
shared_buffers=${S5V_BENCH_SHARED_BUFFERS:-2GB}

script=${S5V_BENCH_SCRIPT:-hnsw_bench.py}
workdir=$(mktemp -d "/tmp/s5v_${script%.py}.XXXXXX")
datadir=$workdir/data
chmod 755 "$workdir"

# PostgreSQL refuses to run as root: run the server as an unprivileged user.
as_pg=()
if [ "$(id -u)" = 0 ]; then
	pguser=${S5V_BENCH_USER:-pgtest}
	if ! id "$pguser" >/dev/null 2>&1; then
		useradd -m "$pguser"
	fi
	chown "$pguser" "$workdir"
	as_pg=(runuser -u "$pguser" --)
fi

cleanup() {
	"${as_pg[@]}" "$bindir/pg_ctl" -D "$datadir" -m fast -w stop >/dev/null 2>&1 || true
	if [ "${S5V_BENCH_KEEP:-0}" != 1 ]; then
		rm -rf "$workdir"
	else
		echo "cluster kept in $workdir" >&2
	fi
}
trap cleanup EXIT

"${as_pg[@]}" "$bindir/initdb" -D "$datadir" -U postgres -A trust --no-sync >/dev/null
# A benchmark cluster: durability is not what is measured (fsync off for both engines alike), the
# buffer pool holds the table and the index, checkpoints stay out of the build.
"${as_pg[@]}" "$bindir/pg_ctl" -D "$datadir" -l "$workdir/server.log" -w \
	-o "-p $port -k $workdir -c listen_addresses='' -c shared_buffers=$shared_buffers -c fsync=off \
-c synchronous_commit=off -c full_page_writes=off -c max_wal_size=8GB -c checkpoint_timeout=1h \
-c jit=off" start >/dev/null

psql=("$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$workdir" -p "$port" -U postgres)
args=()

"${psql[@]}" -d postgres -c "CREATE DATABASE s5v_bench"
if [ -f "$sharedir/extension/s5vector.control" ]; then
	"${psql[@]}" -d s5v_bench -c "CREATE EXTENSION s5vector"
else
	echo "s5vector is not installed (make install): its engine will be skipped" >&2
fi
args+=(--dsn "host=$workdir port=$port user=postgres dbname=s5v_bench")

if [ -f "$sharedir/extension/vector.control" ]; then
	"${psql[@]}" -d postgres -c "CREATE DATABASE pgvector_bench"
	"${psql[@]}" -d pgvector_bench -c "CREATE EXTENSION vector"
	args+=(--pgvector-dsn "host=$workdir port=$port user=postgres dbname=pgvector_bench")
else
	echo "pgvector not installed: its engine will be skipped" >&2
fi

status=0
"${PYTHON:-/usr/bin/python3}" "$here/$script" "${args[@]}" "$@" || status=$?
exit $status
