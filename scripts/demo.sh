#!/usr/bin/env bash
# The README's demo: build and install s5vector, start a throwaway PostgreSQL 15 cluster on loopback with the
# library preloaded (so the background worker runs), load Fashion-MNIST (60k images as 784-d vectors, upload
# times spread over 30 days), run exact nearest-neighbour queries, build an s5vector index with a 7-day hot
# window (older rows go to the cold tier), watch the worker move 6000 rows to the cold tier as they turn 7 days
# old and offload the cold lists' vectors to a local S5 node (s5vector-node on loopback), run the same queries
# through the index (timings, recall), a time-restricted query, and print a summary.
# Everything is removed at exit.
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
	[ -z "${NODE_PID:-}" ] || kill "$NODE_PID" 2>/dev/null || true
	rm -rf "$TMP"
	exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

heading "Starting a local S5 node (s5vector-node, loopback; the cold tier's vectors go there, encrypted)"
"${AS[@]}" mkdir -p "$TMP/s5store"
"${AS[@]}" "$BINDIR/s5vector-node" --listen 127.0.0.1:0 --store "$TMP/s5store" >"$TMP/node.out" 2>&1 &
NODE_PID=$!
NODE_URL=""
for _ in $(seq 1 100); do
	NODE_URL=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$TMP/node.out" | head -n 1)
	[ -n "$NODE_URL" ] && break
	sleep 0.1
done
[ -n "$NODE_URL" ] || { cat "$TMP/node.out"; echo "s5vector-node did not start"; exit 1; }
echo "S5 node at $NODE_URL, store $TMP/s5store"

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
# The background worker (docs/worker.md): a round every 2 s for the demo (the default is 1 min).
shared_preload_libraries = 's5vector'
s5vector.naptime = 2
s5vector.max_rows_per_round = 10000
# S5 offload (docs/s5.md): the worker's offload step uploads sealed cold parts to this node.
s5vector.s5_url = '$NODE_URL'
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

# --- the index ---------------------------------------------------------------------------------------------
# 6000 uploads (every tenth image) are moved to just inside the 7-day window: they turn 7 days old 20 to 80 s
# from now, after the index is built, so the background worker has rows to move while we watch.
"${PSQL[@]}" -c "UPDATE fashion SET uploaded_at = now() - interval '7 days' + (20 + id % 61) * interval '1 second' WHERE id % 10 = 0" \
	-c "VACUUM fashion"
heading "CREATE INDEX ON fashion USING s5vector (embedding vector_l2_ops, uploaded_at) WITH (hot_window = '7 days')"
t=$(now)
"${PSQL[@]}" <<'EOF'
\timing on
CREATE INDEX fashion_embedding_idx ON fashion USING s5vector (embedding vector_l2_ops, uploaded_at)
	WITH (hot_window = '7 days');
\timing off
EOF
BUILD_TIME=$(elapsed "$t")
stat() { "${PSQL[@]}" -At -c "SELECT $1 FROM s5vector_index_stats('fashion_embedding_idx')"; }
# Rows per tier and bytes, as s5vector_index_stats reports them.
TIERS_SQL="SELECT hot_elements AS \"hot rows (graph)\", cold_rows AS \"cold rows (lists)\", cold_lists AS lists,
	pg_size_pretty(local_bytes) AS \"local bytes\",
	round(local_bytes::numeric / nullif(hot_elements + cold_rows, 0)) AS \"local bytes a row\", worker
	FROM s5vector_index_stats('fashion_embedding_idx')"
echo "Right after the build (rows older than 7 days went straight to the cold tier, their vectors straight to S5):"
"${PSQL[@]}" -P footer=off -c "$TIERS_SQL"
HOT_BEFORE=$(stat hot_elements)
COLD_BEFORE=$(stat cold_rows)
BYTES_BEFORE=$(stat "pg_size_pretty(local_bytes)")

heading "The background worker moves rows to the cold tier as they turn 7 days old (nobody calls a function)"
"${PSQL[@]}" -P footer=off -c "SELECT backend_type, datname, application_name FROM pg_stat_activity
	WHERE backend_type LIKE 's5vector%' ORDER BY backend_type"
t=$(now)
AGED=0
for _ in $(seq 1 30); do
	sleep 5
	row=$("${PSQL[@]}" -At -F ' ' -c "SELECT hot_elements, cold_rows,
		(SELECT count(*) FROM fashion WHERE uploaded_at > now() - interval '7 days'),
		(SELECT count(*) FROM fashion WHERE id % 10 = 0 AND uploaded_at > now() - interval '7 days')
		FROM s5vector_index_stats('fashion_embedding_idx')")
	read -r hot cold inside waiting <<<"$row"
	printf '  after %6s: hot %6s  cold %6s  moved by the worker %6s  (rows inside the window: %s, of the 6000: %s)\n' \
		"$(elapsed "$t")" "$hot" "$cold" "$((HOT_BEFORE - hot))" "$inside" "$waiting"
	# Done when the last of the 6000 has aged out and the worker has moved it.
	if [ "$waiting" = 0 ] && [ "$hot" = "$inside" ]; then
		AGED=1
		break
	fi
done
WORKER_TIME=$(elapsed "$t")
[ "$AGED" = 1 ] || echo "  (the worker has not caught up yet; the rest of the demo runs beside it)"
# The round that moved the last rows may still be finishing (its counters are added when it ends).
for _ in $(seq 1 50); do
	[ "$("${PSQL[@]}" -At -c "SELECT count(*) FROM s5vector_worker_status() WHERE state = 'running'")" = 0 ] && break
	sleep 0.2
done
echo
echo "After the worker's rounds:"
"${PSQL[@]}" -P footer=off -c "$TIERS_SQL"
"${PSQL[@]}" -P footer=off -x -c "SELECT database, state, rounds, rows_moved, last_round_start, last_round_end,
	last_error FROM s5vector_worker_status()"
HOT_AFTER=$(stat hot_elements)
COLD_AFTER=$(stat cold_rows)
BYTES_AFTER=$(stat "pg_size_pretty(local_bytes)")
MOVED=$((HOT_BEFORE - HOT_AFTER)) # nothing else moves rows in this cluster

heading "The worker offloads what it moved to the cold lists (the build uploaded the older rows' vectors already; TIDs and ages stay)"
t=$(now)
last=""
stable=0
for _ in $(seq 1 40); do
	row=$("${PSQL[@]}" -At -F ' ' -c "SELECT cold_rows, cold_remote_rows, segments, pg_size_pretty(remote_bytes)
		FROM s5vector_index_stats('fashion_embedding_idx')")
	read -r cold remote segs rbytes rbunit <<<"$row"
	printf '  after %6s: cold rows %6s  offloaded %6s in %4s segments, %s %s on S5\n' "$(elapsed "$t")" "$cold" \
		"$remote" "$segs" "$rbytes" "$rbunit"
	if [ "$remote" = "$last" ] && [ "$remote" != 0 ]; then
		stable=$((stable + 1))
		[ "$stable" -ge 2 ] && break
	else
		stable=0
	fi
	last=$remote
	sleep 3
done
OFFLOAD_TIME=$(elapsed "$t")
"${PSQL[@]}" -P footer=off -c "SELECT cold_rows, cold_remote_rows AS \"offloaded rows\", segments,
	pg_size_pretty(remote_bytes) AS \"remote bytes\", pg_size_pretty(local_bytes) AS \"index file\", last_offload
	FROM s5vector_index_stats('fashion_embedding_idx')"
echo "  The node's store holds only ciphertext: $(du -sh "$TMP/s5store" | cut -f1) in $(find "$TMP/s5store" -type f | wc -l) files."
echo "  (Offloaded parts' row pages are freed for reuse; the index file does not shrink, later inserts fill it.)"
REMOTE_ROWS=$(stat cold_remote_rows)
SEGMENTS=$(stat segments)
REMOTE_BYTES=$(stat "pg_size_pretty(remote_bytes)")

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
CREATE TABLE recall_results AS
SELECT * FROM pg_temp.recall_at(40)
UNION ALL SELECT * FROM pg_temp.recall_at(100)
UNION ALL SELECT * FROM pg_temp.recall_at(200);
SELECT * FROM recall_results ORDER BY ef_search;
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

heading "Summary"
"${PSQL[@]}" <<EOF
\\pset footer off
-- Last-day queries for all $NQUERIES test images: through the index and exact, recall of the first against the second.
CREATE FUNCTION pg_temp.last_day() RETURNS TABLE("recall@10" numeric, index_ms numeric, exact_ms numeric)
LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz; ms_index numeric; ms_exact numeric;
BEGIN
	PERFORM set_config('enable_indexscan', 'off', true);
	t0 := clock_timestamp();
	CREATE TEMP TABLE day_exact ON COMMIT DROP AS
	SELECT q.id AS qid, n.id FROM fashion_queries q CROSS JOIN LATERAL (
		SELECT f.id FROM fashion f WHERE f.uploaded_at > now() - interval '1 day'
		ORDER BY f.embedding <-> q.embedding LIMIT 10) n;
	ms_exact := extract(epoch FROM clock_timestamp() - t0) * 1000 / $NQUERIES;
	PERFORM set_config('enable_indexscan', 'on', true);
	PERFORM set_config('enable_seqscan', 'off', true);
	t0 := clock_timestamp();
	CREATE TEMP TABLE day_index ON COMMIT DROP AS
	SELECT q.id AS qid, n.id FROM fashion_queries q CROSS JOIN LATERAL (
		SELECT f.id FROM fashion f WHERE f.uploaded_at > now() - interval '1 day'
		ORDER BY f.embedding <-> q.embedding LIMIT 10) n;
	ms_index := extract(epoch FROM clock_timestamp() - t0) * 1000 / $NQUERIES;
	RETURN QUERY SELECT round((SELECT count(*) FROM day_index a JOIN day_exact e USING (qid, id))
		/ greatest((SELECT count(*) FROM day_exact), 1)::numeric, 3), round(ms_index, 2), round(ms_exact, 2);
END \$\$;
CREATE TEMP TABLE day AS SELECT * FROM pg_temp.last_day();
SELECT item AS measure, value AS result FROM (VALUES
	(1, 'rows (Fashion-MNIST train, 784-d)', '60000, loaded in $LOAD_TIME'),
	(2, 'index build (hot_window 7 days)', '$BUILD_TIME'),
	(3, 'after the build: hot / cold rows', '$HOT_BEFORE / $COLD_BEFORE, $BYTES_BEFORE local'),
	(4, 'background worker', '$MOVED rows moved hot -> cold in $WORKER_TIME, no function called'),
	(5, 'after the worker: hot / cold rows', '$HOT_AFTER / $COLD_AFTER, $BYTES_AFTER local'),
	(6, 'S5 offload by the worker', '$REMOTE_ROWS cold rows in $SEGMENTS segments, $REMOTE_BYTES on S5 (watched for $OFFLOAD_TIME)'),
	(7, 'recall@10 over everything, ef_search 40', (SELECT "recall@10" || ' at ' || "ms per query" || ' ms a query' FROM recall_results WHERE ef_search = 40)),
	(8, 'recall@10 over everything, ef_search 100', (SELECT "recall@10" || ' at ' || "ms per query" || ' ms a query' FROM recall_results WHERE ef_search = 100)),
	(10, 'last day, through the index', (SELECT "recall@10" || ' recall@10 at ' || index_ms || ' ms a query' FROM day)),
	(11, 'last day, exact (sequential scan)', (SELECT exact_ms || ' ms a query' FROM day))
) v(n, item, value) ORDER BY n;
EOF

heading "Done"
echo "demo finished in $(elapsed "$DEMO_START"); stopping the cluster and removing $TMP"
