#!/usr/bin/env bash
# The README's demo: build and install s5vector, start a throwaway PostgreSQL 15 cluster on loopback, load
# Fashion-MNIST (60k images as 784-d vectors), run exact nearest-neighbour queries, build an s5vector index,
# run the same queries through it (timings, recall), and a time-restricted query. Everything is removed at exit.
#
# Usage: bash scripts/demo.sh
# Environment: S5V_DEMO_PORT (default 55499), S5V_DEMO_QUERIES (queries used for recall, default 50),
#              S5V_DEMO_SKIP_BUILD=1 (use the installed extension as it is).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=${S5V_DEMO_PORT:-55499}
NQUERIES=${S5V_DEMO_QUERIES:-50}
DATASET=/usr/share/datasets/fashion-mnist
PYTHON=/usr/bin/python3 # Debian's, with python3-numpy (the PATH python3 may lack Debian modules)

heading() { printf '\n\033[1m==== %s ====\033[0m\n' "$*"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

DEMO_START=$(now)

# --- dependencies, build, install --------------------------------------------------------------------------
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
if [ "${S5V_DEMO_SKIP_BUILD:-0}" != 1 ]; then
	heading "Installing dependencies (apt-get, only what is missing)"
	bash "$ROOT/scripts/install-deps.sh"
	heading "Building and installing s5vector"
	t=$(now)
	make -C "$ROOT" -j"$(nproc)" >/dev/null
	$SUDO make -C "$ROOT" install >/dev/null
	echo "built and installed in $(elapsed "$t")"
fi

BINDIR=$(pg_config --bindir)

# --- a throwaway cluster -----------------------------------------------------------------------------------
# PostgreSQL refuses to run as root: as root, run the server and psql as the unprivileged user s5vtest
# (the convention of scripts/pg-tests.sh), creating it if needed.
AS=()
if [ "$(id -u)" -eq 0 ]; then
	id s5vtest >/dev/null 2>&1 || useradd --system --create-home --shell /bin/bash s5vtest
	AS=(runuser -u s5vtest --)
fi

TMP=$(mktemp -d /tmp/s5vector-demo.XXXXXX)
chmod 755 "$TMP"
[ ${#AS[@]} -eq 0 ] || chown s5vtest "$TMP"
PGDATA="$TMP/data"
SOCK="$TMP/sock"

cleanup() {
	status=$?
	if [ -f "$PGDATA/postmaster.pid" ]; then
		"${AS[@]}" "$BINDIR/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$TMP"
	exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

heading "Starting a throwaway PostgreSQL 15 cluster (127.0.0.1:$PORT, socket in $SOCK)"
"${AS[@]}" mkdir -p "$SOCK"
"${AS[@]}" "$BINDIR/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$TMP/initdb.log" 2>&1 ||
	{ cat "$TMP/initdb.log"; exit 1; }
cat >>"$PGDATA/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCK'
shared_buffers = 512MB
maintenance_work_mem = 1GB
max_parallel_maintenance_workers = 0
fsync = off
synchronous_commit = off
full_page_writes = off
max_wal_size = 4GB
jit = off
EOF
if ! "${AS[@]}" "$BINDIR/pg_ctl" -D "$PGDATA" -l "$TMP/server.log" -w start >/dev/null; then
	tail -n 30 "$TMP/server.log"
	exit 1
fi
"${AS[@]}" "$BINDIR/psql" -X -q -h "$SOCK" -p "$PORT" -U postgres -d postgres -c "SELECT version()" -At

PSQL=("${AS[@]}" "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres -d postgres)

# --- load Fashion-MNIST ------------------------------------------------------------------------------------
# idx format: images = 16-byte header, then 28*28 uint8 per image; labels = 8-byte header, then uint8.
# Output: a COPY text stream "id <TAB> label <TAB> uploaded_at <TAB> [p0,...,p783]". uploaded_at is spread
# over the 30 days before the demo started, deterministically (a hash of the id).
cat >"$TMP/fmnist_copy.py" <<'EOF'
import gzip, sys, datetime
import numpy as np

images_path, labels_path, first, count, base_epoch, with_time = sys.argv[1:7]
first, count, base_epoch, with_time = int(first), int(count), int(base_epoch), with_time == "1"
NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
with gzip.open(images_path, "rb") as f:
    images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 784)
with gzip.open(labels_path, "rb") as f:
    labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
images, labels = images[first:first + count], labels[first:first + count]
digits = [str(i) for i in range(256)]
out = sys.stdout
SPAN = 30 * 86400
base = datetime.datetime.fromtimestamp(base_epoch, datetime.timezone.utc)
for i in range(len(images)):
    row = first + i
    vec = "[" + ",".join([digits[p] for p in images[i].tolist()]) + "]"
    if with_time:
        age = (row * 2654435761) % SPAN  # Knuth's multiplicative hash: ages do not follow ids
        ts = (base - datetime.timedelta(seconds=age)).strftime("%Y-%m-%d %H:%M:%S+00")
        out.write(f"{row}\t{NAMES[labels[i]]}\t{ts}\t{vec}\n")
    else:
        out.write(f"{row}\t{NAMES[labels[i]]}\t{vec}\n")
EOF
chmod 644 "$TMP/fmnist_copy.py"

heading "Loading Fashion-MNIST ($DATASET)"
"${PSQL[@]}" <<'EOF'
CREATE EXTENSION s5vector;
CREATE TABLE fashion (id int PRIMARY KEY, label text, uploaded_at timestamptz, embedding vector(784));
-- Test images, used as query vectors (they are not in the table).
CREATE TABLE fashion_queries (id int PRIMARY KEY, label text, embedding vector(784));
EOF
BASE_EPOCH=$(date +%s)
t=$(now)
"$PYTHON" "$TMP/fmnist_copy.py" "$DATASET/train-images-idx3-ubyte.gz" "$DATASET/train-labels-idx1-ubyte.gz" \
	0 60000 "$BASE_EPOCH" 1 | "${PSQL[@]}" -c "\copy fashion from stdin"
LOAD_TIME=$(elapsed "$t")
"$PYTHON" "$TMP/fmnist_copy.py" "$DATASET/t10k-images-idx3-ubyte.gz" "$DATASET/t10k-labels-idx1-ubyte.gz" \
	0 "$NQUERIES" "$BASE_EPOCH" 0 | "${PSQL[@]}" -c "\copy fashion_queries from stdin"
"${PSQL[@]}" -c "VACUUM ANALYZE fashion" -c "VACUUM ANALYZE fashion_queries"
echo "loaded 60000 training images (784-d) with COPY in $LOAD_TIME; $NQUERIES test images as queries"
"${PSQL[@]}" <<'EOF'
\pset footer off
SELECT label, count(*) AS images, min(uploaded_at)::date AS oldest, max(uploaded_at)::date AS newest
FROM fashion GROUP BY label ORDER BY label;
SELECT pg_size_pretty(pg_total_relation_size('fashion')) AS "table size",
       count(*) FILTER (WHERE uploaded_at > now() - interval '1 day') AS "uploaded in the last day"
FROM fashion;
EOF

# The queries shown in detail: the first three test images.
show_queries() {
	cat <<'EOF'
\pset footer off
\timing on
\echo
\echo 'Query 1: test image 0 (label: Ankle boot)'
SELECT id, label, round((embedding <-> (SELECT embedding FROM fashion_queries WHERE id = 0))::numeric, 1) AS distance
FROM fashion ORDER BY embedding <-> (SELECT embedding FROM fashion_queries WHERE id = 0) LIMIT 10;
\echo 'Query 2: test image 1 (label: Pullover)'
SELECT id, label, round((embedding <-> (SELECT embedding FROM fashion_queries WHERE id = 1))::numeric, 1) AS distance
FROM fashion ORDER BY embedding <-> (SELECT embedding FROM fashion_queries WHERE id = 1) LIMIT 10;
\echo 'Query 3: test image 2 (label: Trouser)'
SELECT id, label, round((embedding <-> (SELECT embedding FROM fashion_queries WHERE id = 2))::numeric, 1) AS distance
FROM fashion ORDER BY embedding <-> (SELECT embedding FROM fashion_queries WHERE id = 2) LIMIT 10;
\timing off
EOF
}

# --- exact search -----------------------------------------------------------------------------------------
heading "Exact nearest neighbours (sequential scan, L2 distance <->)"
{
	echo "SET enable_indexscan = off;"
	show_queries
	cat <<EOF
\\echo
\\echo 'Exact top 10 for all $NQUERIES test images (kept as ground truth for recall):'
\\timing on
CREATE TABLE exact AS
SELECT q.id AS qid, n.id
FROM fashion_queries q CROSS JOIN LATERAL (
	SELECT f.id FROM fashion f ORDER BY f.embedding <-> q.embedding LIMIT 10) n;
\\timing off
EOF
} | "${PSQL[@]}"

# --- the index --------------------------------------------------------------------------------------------
heading "CREATE INDEX ON fashion USING s5vector (embedding vector_l2_ops, uploaded_at)"
"${PSQL[@]}" <<'EOF'
\pset footer off
\timing on
CREATE INDEX fashion_embedding_idx ON fashion USING s5vector (embedding vector_l2_ops, uploaded_at);
\timing off
\x on
SELECT pg_size_pretty(pg_relation_size('fashion_embedding_idx')) AS index_size, *
FROM s5vector_index_stats('fashion_embedding_idx');
\x off
EOF

heading "EXPLAIN: the planner uses the index for ORDER BY ... LIMIT"
"${PSQL[@]}" <<'EOF'
\pset footer off
EXPLAIN (COSTS OFF)
SELECT id, label FROM fashion ORDER BY embedding <-> (SELECT embedding FROM fashion_queries WHERE id = 0) LIMIT 10;
EOF

heading "The same queries through the index (s5vector.ef_search = 40, the default)"
show_queries | "${PSQL[@]}"

heading "Recall@10 against the exact answers, $NQUERIES queries"
"${PSQL[@]}" <<EOF
\\pset footer off
CREATE FUNCTION pg_temp.recall_at(ef int) RETURNS TABLE(ef_search int, "recall@10" numeric, "ms per query" numeric)
LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz; ms numeric;
BEGIN
	PERFORM set_config('s5vector.ef_search', ef::text, true);
	-- Measure the index even where the planner would rather sort a sequential scan (its cost model
	-- prefers that at ef_search >= 100 on this table, where vectors are TOASTed and look cheap to scan).
	PERFORM set_config('enable_seqscan', 'off', true);
	t0 := clock_timestamp();
	CREATE TEMP TABLE approx ON COMMIT DROP AS
	SELECT q.id AS qid, n.id
	FROM fashion_queries q CROSS JOIN LATERAL (
		SELECT f.id FROM fashion f ORDER BY f.embedding <-> q.embedding LIMIT 10) n;
	ms := extract(epoch FROM clock_timestamp() - t0) * 1000 / $NQUERIES;
	RETURN QUERY SELECT ef, round((SELECT count(*) FROM approx a JOIN exact e USING (qid, id)) / (10.0 * $NQUERIES), 3),
		round(ms, 2);
	DROP TABLE approx;
END \$\$;
SELECT * FROM pg_temp.recall_at(40)
UNION ALL SELECT * FROM pg_temp.recall_at(100)
UNION ALL SELECT * FROM pg_temp.recall_at(200);
EOF

heading "Time-restricted search: uploaded in the last day (the age column is filtered inside the index)"
"${PSQL[@]}" <<'EOF'
\pset footer off
EXPLAIN (COSTS OFF)
SELECT id, label, uploaded_at FROM fashion
WHERE uploaded_at > now() - interval '1 day'
ORDER BY embedding <-> (SELECT embedding FROM fashion_queries WHERE id = 0) LIMIT 10;
\echo
\echo 'Through the index:'
\timing on
SELECT id, label, date_trunc('second', uploaded_at) AS uploaded_at,
       round((embedding <-> (SELECT embedding FROM fashion_queries WHERE id = 0))::numeric, 1) AS distance
FROM fashion
WHERE uploaded_at > now() - interval '1 day'
ORDER BY embedding <-> (SELECT embedding FROM fashion_queries WHERE id = 0) LIMIT 10;
\timing off
\echo 'Exact (sequential scan), for comparison:'
SET enable_indexscan = off;
\timing on
SELECT id, label, date_trunc('second', uploaded_at) AS uploaded_at,
       round((embedding <-> (SELECT embedding FROM fashion_queries WHERE id = 0))::numeric, 1) AS distance
FROM fashion
WHERE uploaded_at > now() - interval '1 day'
ORDER BY embedding <-> (SELECT embedding FROM fashion_queries WHERE id = 0) LIMIT 10;
\timing off
EOF

heading "Done"
echo "demo finished in $(elapsed "$DEMO_START"); stopping the cluster and removing $TMP"
