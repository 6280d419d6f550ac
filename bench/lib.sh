# Shared by the shell benchmarks under bench/ (sourced, not run): re-running as the s5vtest user, a throw-away
# cluster, and the clustered synthetic vectors. A script sources it with
#   source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
# PG_CONFIG selects the PostgreSQL (the installed s5vector of that PostgreSQL is used).

PG_CONFIG=${PG_CONFIG:-pg_config}
BINDIR=$($PG_CONFIG --bindir)

# As root, run the calling script again as the user s5vtest (PostgreSQL refuses to run as root), from a copy of
# bench/ that s5vtest can read; the environment (S5V_BENCH_* included) is kept. Call: bench_as_s5vtest "$@".
bench_as_s5vtest() {
	[ "$(id -u)" -eq 0 ] || return 0
	id s5vtest >/dev/null 2>&1 || useradd --system --create-home --shell /bin/bash s5vtest
	local copy
	copy=$(mktemp -d /tmp/s5v-benchsrc.XXXXXX)
	cp "$(dirname "${BASH_SOURCE[1]}")"/*.sh "$copy/"
	chmod 755 "$copy" "$copy"/*.sh
	exec runuser -u s5vtest -- env PATH="$BINDIR:$PATH" PG_CONFIG="$PG_CONFIG" \
		bash "$copy/$(basename "${BASH_SOURCE[1]}")" "$@"
}

# Start a throw-away cluster in a new temporary directory ($DATA), on a private socket (no TCP) at port $1;
# postgresql.conf gets the common settings, then the lines read from stdin. Sets DATA, PGHOST, PGPORT,
# PGDATABASE; the cluster is stopped and DATA removed at exit (with every background job of the script).
bench_cluster_start() {
	export PATH="$BINDIR:$PATH"
	DATA=$(mktemp -d /tmp/s5v-bench.XXXXXX)
	trap 'kill $(jobs -p) 2>/dev/null || true; pg_ctl -D "$DATA/pg" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$DATA"' EXIT
	initdb -D "$DATA/pg" >/dev/null 2>&1
	{
		cat <<EOF
port = $1
unix_socket_directories = '$DATA'
listen_addresses = ''
autovacuum = off
shared_buffers = 256MB
max_connections = 20
EOF
		cat
	} >>"$DATA/pg/postgresql.conf"
	pg_ctl -D "$DATA/pg" -l "$DATA/log" -w start >/dev/null
	export PGHOST=$DATA PGPORT=$1 PGDATABASE=postgres
}

q() { psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
now_ms() { date +%s%3N; }

# Clustered random vectors: 100 centres, spread 0.35 (like test/tap/S5VTest.pm's vec_sql). The SQL expression of
# the vector of row k (a column or expression named k in scope), $1 dimensions.
bench_vec() {
	echo "(SELECT array_agg(((sin(((k % 100) + 0.5) * 12.9898 + j * 78.233) * 43758.5453) - floor(sin(((k % 100) + 0.5) * 12.9898 + j * 78.233) * 43758.5453)) * 20 - 10 + 0.35 * (((sin(k * 0.0137 + j * 39.3467 + 11.1) * 43758.5453) - floor(sin(k * 0.0137 + j * 39.3467 + 11.1) * 43758.5453)) * 20 - 10) ORDER BY j)::vector FROM generate_series(1, $1) j)"
}
