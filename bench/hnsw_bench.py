#!/usr/bin/python3
"""HNSW benchmark: s5vector's hot-tier index against pgvector's hnsw and faiss's IndexHNSWFlat.

For each engine: load the vectors, build the index (timed), report its size, then run the queries one
at a time for a sweep of ef_search values and report recall@k against exact ground truth, queries per
second and the p50/p99 latency. PostgreSQL engines run `SELECT id FROM t ORDER BY embedding <-> $1
LIMIT k` (`<=>` with --metric cosine) over a local connection; faiss runs in this process on one thread.

Uses Debian's python3 with python3-psycopg, python3-numpy and python3-faiss (hence /usr/bin/python3).
bench/run_hnsw_bench.sh starts a throwaway cluster and passes its arguments through; see
docs/benchmarks.md.

Examples:
  hnsw_bench.py --dsn 'host=/tmp port=55432 dbname=s5v' --pgvector-dsn 'host=/tmp port=55432 dbname=pgv'
  hnsw_bench.py --dataset fashion-mnist --engines pgvector,faiss --pgvector-dsn ... --json out.json
  hnsw_bench.py --dataset fvecs:/data/sift_base.fvecs --n 100000 --queries 1000 --engines faiss
  hnsw_bench.py --dataset glove100-wink --n 100000 ...   # after bench/datasets/glove100-wink.sh; cosine
"""

import argparse
import gzip
import json
import os
import platform
import struct
import sys
import time

import numpy as np

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
# Where bench/datasets/*.sh put what they download (outside the repository).
DATASETS_DIR = os.environ.get("S5V_DATASETS_DIR", "/var/tmp/s5vector-datasets")
# Prepared datasets: name -> (directory under DATASETS_DIR, the script that prepares it, default metric).
PREPARED = {"glove100-wink": ("glove100-wink", "bench/datasets/glove100-wink.sh", "cosine")}
# Per metric: the operator class and the ORDER BY operator of both PostgreSQL engines.
METRICS = {"l2": ("vector_l2_ops", "<->"), "cosine": ("vector_cosine_ops", "<=>")}
ALL_ENGINES = ("s5vector", "pgvector", "faiss")


# ---------------------------------------------------------------------------------------------------
# Datasets: (name, base float32 [n, d], queries float32 [q, d])


def synthetic(n, queries, dim, clusters, cluster_std, seed):
    """Gaussian clusters whose spread overlaps their neighbours' (centres ~ N(0, 1), points ~ N(centre,
    cluster_std)); queries come from the same mixture but are not in the base set."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)

    def draw(count):
        out = np.empty((count, dim), dtype=np.float32)
        labels = rng.integers(0, clusters, size=count)
        for start in range(0, count, 65536):
            stop = min(start + 65536, count)
            noise = rng.standard_normal((stop - start, dim), dtype=np.float32) * np.float32(cluster_std)
            out[start:stop] = centres[labels[start:stop]] + noise
        return out

    return draw(n), draw(queries)


def read_idx_images(path):
    """An idx3-ubyte(.gz) file (MNIST format): big-endian magic 2051, count, rows, cols, then uint8 pixels."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        magic, count, rows, cols = struct.unpack(">iiii", f.read(16))
        if magic != 2051:
            raise ValueError(f"{path}: not an idx3 image file (magic {magic})")
        data = np.frombuffer(f.read(count * rows * cols), dtype=np.uint8)
    if data.size != count * rows * cols:
        raise ValueError(f"{path}: truncated")
    return data.reshape(count, rows * cols).astype(np.float32)


def fashion_mnist(n, queries):
    base = read_idx_images(os.path.join(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz"))
    test = read_idx_images(os.path.join(FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz"))
    return base[: n or len(base)], test[:queries]


def read_fvecs(path):
    """The .fvecs format: each row is an int32 dimension followed by that many float32 (little-endian)."""
    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        raise ValueError(f"{path}: empty")
    dim = int(raw[0])
    if dim <= 0 or raw.size % (dim + 1) != 0:
        raise ValueError(f"{path}: not an fvecs file")
    rows = raw.reshape(-1, dim + 1)
    if not np.all(rows[:, 0] == dim):
        raise ValueError(f"{path}: rows of different dimensions")
    return rows[:, 1:].copy().view(np.float32)


def fvecs(path, n, queries, query_path):
    data = read_fvecs(path)
    if query_path:
        q = read_fvecs(query_path)[:queries]
        return data[: n or len(data)], q
    # One file: the last `queries` rows are the queries, the rows before them the base set.
    if len(data) <= queries:
        raise ValueError(f"{path}: {len(data)} rows, need more than --queries {queries}")
    base = data[: len(data) - queries]
    return base[: n or len(base)], data[len(data) - queries :]


def prepared(spec, n, queries):
    """A dataset that a bench/datasets script wrote as base.fvecs + queries.fvecs (held-out queries)."""
    sub, script, _ = PREPARED[spec]
    d = os.path.join(DATASETS_DIR, sub)
    base_path, query_path = os.path.join(d, "base.fvecs"), os.path.join(d, "queries.fvecs")
    if not (os.path.exists(base_path) and os.path.exists(query_path)):
        raise SystemExit(f"--dataset {spec}: {base_path} or {query_path} missing: run {script} first "
                         f"(S5V_DATASETS_DIR={DATASETS_DIR})")
    source = ""
    try:
        with open(os.path.join(d, "SOURCE")) as f:
            source = f.readline().strip()
    except OSError:
        pass
    base, q = fvecs(base_path, n, queries, query_path)
    return base, q, f"{spec} ({source})" if source else spec


def load_dataset(args):
    spec = args.dataset
    if spec == "synthetic":
        n = args.n or 100000
        base, q = synthetic(n, args.queries, args.dim, args.clusters, args.cluster_std, args.seed)
        name = f"synthetic (seed {args.seed}, {args.clusters} clusters, std {args.cluster_std})"
    elif spec == "fashion-mnist":
        base, q = fashion_mnist(args.n, args.queries)
        name = "fashion-mnist (train as base, t10k as queries)"
    elif spec in PREPARED:
        base, q, name = prepared(spec, args.n, args.queries)
    elif spec.startswith("fvecs:"):
        path = spec[len("fvecs:") :]
        base, q = fvecs(path, args.n, args.queries, args.query_fvecs)
        name = f"fvecs {path}"
    else:
        raise SystemExit(f"unknown --dataset {spec!r} (synthetic, fashion-mnist, "
                         f"{', '.join(PREPARED)} or fvecs:PATH)")
    return name, np.ascontiguousarray(base, dtype=np.float32), np.ascontiguousarray(q, dtype=np.float32)


# ---------------------------------------------------------------------------------------------------
# Exact ground truth


def normalized(x):
    """Rows scaled to unit L2 norm (float32; the norm taken in float64), for cosine distance: on unit vectors the
    L2 order is the cosine order (|a - b|^2 = 2 - 2 cos)."""
    norm = np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.where(norm > 0, norm, 1.0), dtype=np.float32)


def ground_truth(base, queries, k, batch=256, metric="l2"):
    """Exact k nearest neighbours by L2 (for cosine: by L2 between the normalised vectors): float32 matrix products pick k+32 candidates per query, then the
    candidates are re-ranked in float64 (the float32 expansion ||x||^2 - 2 q.x + ||q||^2 cancels badly
    on un-normalised data such as 0..255 pixels)."""
    if metric == "cosine":
        base, queries = normalized(base), normalized(queries)
    k = min(k, len(base))
    extra = min(len(base), k + 32)
    base_sq = np.einsum("ij,ij->i", base, base, dtype=np.float32)
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), batch):
        q = queries[start : start + batch]
        d = base_sq[None, :] - 2.0 * (q @ base.T)
        cand = np.argpartition(d, extra - 1, axis=1)[:, :extra]
        for row in range(len(q)):
            c = cand[row]
            diff = base[c].astype(np.float64) - q[row].astype(np.float64)
            exact = np.einsum("ij,ij->i", diff, diff)
            order = np.lexsort((c, exact))[:k]  # distance, then id: deterministic ties
            out[start + row] = c[order]
    return out


def recall_at_k(results, truth, k):
    hits = 0
    for got, want in zip(results, truth):
        hits += len(set(got[:k]) & set(want[:k].tolist()))
    return hits / (len(truth) * k)


def latency_summary(latencies, truth, results, k, ef):
    lat = np.asarray(latencies)
    return {
        "ef_search": ef,
        "recall": recall_at_k(results, truth, k),
        "qps": len(lat) / lat.sum(),
        "p50_ms": float(np.percentile(lat, 50) * 1000),
        "p99_ms": float(np.percentile(lat, 99) * 1000),
        "mean_ms": float(lat.mean() * 1000),
    }


# ---------------------------------------------------------------------------------------------------
# PostgreSQL engines (s5vector and pgvector share everything but the access method and the GUC)


class NotInstalled(RuntimeError):
    """An optional engine (pgvector) that this machine does not have: reported, not a failure."""


class PgEngine:
    def __init__(self, name, dsn, args):
        self.name = name
        self.dsn = dsn
        self.args = args
        if name == "s5vector":
            self.extension, self.am, self.guc = "s5vector", "s5vector", "s5vector.ef_search"
        else:
            self.extension, self.am, self.guc = "vector", "hnsw", "hnsw.ef_search"
        self.table = args.table
        self.index = args.table + "_embedding_idx"

    def connect(self):
        import psycopg

        conn = psycopg.connect(self.dsn, autocommit=True)
        return conn

    def extension_version(self, conn):
        """The installed version, creating the extension when the database lacks it but has it available."""
        row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = %s", (self.extension,)).fetchone()
        if row:
            return row[0]
        avail = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = %s", (self.extension,)).fetchone()
        if not avail:
            return None
        conn.execute(f"CREATE EXTENSION {self.extension}")
        row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = %s", (self.extension,)).fetchone()
        return row[0] if row else None

    def copy_binary(self, conn, base):
        """COPY ... (FORMAT BINARY): pgvector's wire format (int16 dim, int16 unused, float4 big-endian),
        which s5vector's recv reads byte for byte too."""
        n, dim = base.shape
        row = np.dtype(
            [
                ("fields", ">i2"),
                ("id_len", ">i4"),
                ("id", ">i4"),
                ("vec_len", ">i4"),
                ("dim", ">i2"),
                ("unused", ">i2"),
                ("x", ">f4", (dim,)),
            ]
        )
        with conn.cursor() as cur:
            with cur.copy(f"COPY {self.table} (id, embedding) FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
                chunk = 8192
                for start in range(0, n, chunk):
                    stop = min(start + chunk, n)
                    rows = np.zeros(stop - start, dtype=row)
                    rows["fields"] = 2
                    rows["id_len"] = 4
                    rows["id"] = np.arange(start, stop, dtype=np.int32)
                    rows["vec_len"] = 4 + 4 * dim
                    rows["dim"] = dim
                    rows["x"] = base[start:stop]
                    copy.write(rows.tobytes())
                copy.write(struct.pack(">h", -1))

    def copy_text(self, conn, base):
        with conn.cursor() as cur:
            with cur.copy(f"COPY {self.table} (id, embedding) FROM STDIN") as copy:
                for i, v in enumerate(base):
                    copy.write(f"{i}\t{vector_literal(v)}\n")

    def build(self, base, queries):
        """Load the table, build the index (timed), prepare the query; the connection stays open for
        measure()."""
        args = self.args
        n, dim = base.shape
        res = {"engine": self.name, "dsn": self.dsn}
        self.conn = conn = self.connect()
        version = self.extension_version(conn)
        if version is None:
            raise NotInstalled(f"{self.name} not installed (no extension {self.extension} in this server)")
        res["version"] = version
        res["server_version"] = conn.execute("SHOW server_version").fetchone()[0]
        self.backend_pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        if args.reuse and self.reusable(conn, n):
            res["reused"] = True
            res["load_s"] = res["build_s"] = 0.0
            res["build_notices"] = []
            res["table_bytes"] = conn.execute("SELECT pg_table_size(%s)", (self.table,)).fetchone()[0]
            res["index_bytes"] = conn.execute("SELECT pg_relation_size(%s)", (self.index,)).fetchone()[0]
            return self.prepare(res, queries)
        conn.execute(f"DROP TABLE IF EXISTS {self.table}")
        conn.execute(f"CREATE TABLE {self.table} (id int4 NOT NULL, embedding vector({dim}))")

        t0 = time.perf_counter()
        # The table holds the vectors as given (for cosine not normalised: the index normalises what it stores).
        (self.copy_text if args.copy_format == "text" else self.copy_binary)(conn, base)
        conn.execute(f"VACUUM ANALYZE {self.table}")
        res["load_s"] = time.perf_counter() - t0
        res["table_bytes"] = conn.execute("SELECT pg_table_size(%s)", (self.table,)).fetchone()[0]  # with TOAST

        conn.execute(f"SET maintenance_work_mem = '{args.maintenance_work_mem}'")
        conn.execute("SET max_parallel_maintenance_workers = 0")  # serial builds, like faiss on one thread
        notices = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        t0 = time.perf_counter()
        cpu0 = self.backend_cpu()
        conn.execute(
            f"CREATE INDEX {self.index} ON {self.table} USING {self.am} (embedding {METRICS[args.metric][0]}) "
            f"WITH (m = {args.m}, ef_construction = {args.ef_construction})"
        )
        res["build_s"] = time.perf_counter() - t0
        cpu1 = self.backend_cpu()
        # The backend's CPU time for the (serial) build: steadier than the wall clock on a shared machine.
        res["build_cpu_s"] = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
        res["build_notices"] = notices
        res["index_bytes"] = conn.execute("SELECT pg_relation_size(%s)", (self.index,)).fetchone()[0]
        return self.prepare(res, queries)

    def reusable(self, conn, n):
        """--reuse: the table (with n rows) and its index of this access method exist from an earlier --keep run
        (the data is deterministic for a dataset and seed, so only the row count is compared)."""
        row = conn.execute(
            "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam WHERE c.relname = %s",
            (self.index,)).fetchone()
        if not row or row[0] != self.am:
            return False
        indexdef = conn.execute("SELECT pg_get_indexdef(%s::regclass)", (self.index,)).fetchone()[0]
        if METRICS[self.args.metric][0] not in indexdef:
            return False
        return conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0] == n

    def prepare(self, res, queries):
        args, conn = self.args, self.conn
        self.literals = [vector_literal(q) for q in queries]
        self.sql = f"SELECT id FROM {self.table} ORDER BY embedding {METRICS[args.metric][1]} %s LIMIT {args.k}"
        self.cur = conn.cursor()
        # The plan must be the index scan, or the numbers mean nothing.
        self.cur.execute("EXPLAIN (COSTS OFF) " + self.sql, (self.literals[0],))
        plan = "\n".join(r[0] for r in self.cur.fetchall())
        res["plan"] = plan
        res["index_used"] = self.index in plan
        if not res["index_used"]:
            print(f"warning: {self.name}: the plan does not use {self.index}:\n{plan}", file=sys.stderr)
        return res

    def measure(self, ef):
        """Results and latencies of every query, one at a time, at this ef_search (after the warm-up)."""
        cur = self.cur
        cur.execute(f"SET {self.guc} = {int(ef)}")
        for lit in self.literals[: self.args.warmup]:
            cur.execute(self.sql, (lit,), prepare=True)
            cur.fetchall()
        results, latencies = [], []
        cpu0 = self.backend_cpu()
        for lit in self.literals:
            t0 = time.perf_counter()
            cur.execute(self.sql, (lit,), prepare=True)
            rows = cur.fetchall()
            latencies.append(time.perf_counter() - t0)
            results.append([r[0] for r in rows])
        cpu1 = self.backend_cpu()
        self.last_cpu_ms = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) * 1000 / len(self.literals)
        return results, latencies

    def backend_cpu(self):
        """User + system CPU seconds of this connection's backend so far (/proc, when the server runs on this
        machine; None otherwise): less disturbed by other load on a shared machine than wall-clock QPS."""
        try:
            with open(f"/proc/{self.backend_pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def close(self):
        conn = getattr(self, "conn", None)
        if conn is None:
            return
        try:
            if not self.args.keep:
                conn.execute(f"DROP TABLE IF EXISTS {self.table}")
        finally:
            conn.close()
            self.conn = None


def vector_literal(v):
    # repr of the float64 holding each float32: reads back as the same float32.
    return "[" + ",".join(repr(float(x)) for x in v) + "]"


# ---------------------------------------------------------------------------------------------------
# faiss


class FaissEngine:
    name = "faiss"

    def __init__(self, args):
        self.args = args

    def build(self, base, queries):
        import faiss

        faiss.omp_set_num_threads(1)
        n, dim = base.shape
        if self.args.metric == "cosine":
            # Cosine as L2 between unit vectors (the same order), as ann-benchmarks does for angular sets.
            base, queries = normalized(base), normalized(queries)
        res = {"engine": "faiss", "version": faiss.__version__}
        self.index = faiss.IndexHNSWFlat(dim, self.args.m)
        self.index.hnsw.efConstruction = self.args.ef_construction
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        self.index.add(base)
        res["build_s"] = time.perf_counter() - t0
        res["build_cpu_s"] = time.process_time() - cpu0
        res["index_bytes"] = int(faiss.serialize_index(self.index).nbytes)
        self.queries = queries
        return res

    def measure(self, ef):
        index, queries, k = self.index, self.queries, self.args.k
        index.hnsw.efSearch = int(ef)
        for i in range(min(self.args.warmup, len(queries))):
            index.search(queries[i : i + 1], k)
        results, latencies = [], []
        cpu0 = time.process_time()
        for i in range(len(queries)):
            t0 = time.perf_counter()
            _, ids = index.search(queries[i : i + 1], k)
            latencies.append(time.perf_counter() - t0)
            results.append(ids[0].tolist())
        self.last_cpu_ms = (time.process_time() - cpu0) * 1000 / len(queries)
        return results, latencies

    def close(self):
        self.index = None


def run_engines(base, queries, truth, args):
    """Build every engine's index, then sweep ef_search with the engines interleaved (each ef_search value
    for every engine in turn, --rounds times), so that other load on the machine falls on all engines alike.
    Per engine and ef_search, the round with the highest QPS is reported (the recall is the same in every
    round: the searches are deterministic)."""
    engines, results = [], []
    for name in args.engines:
        print(f"{name}: building", file=sys.stderr, flush=True)
        try:
            if name == "faiss":
                eng = FaissEngine(args)
            else:
                dsn = args.dsn if name == "s5vector" else args.pgvector_dsn
                if not dsn and name == "pgvector":
                    raise NotInstalled("pgvector not installed (no --pgvector-dsn given)")
                if not dsn:
                    raise RuntimeError("no --dsn given")
                eng = PgEngine(name, dsn, args)
            res = eng.build(base, queries)
            res["sweep"] = []
            engines.append((eng, res))
        except Exception as e:  # one engine failing (e.g. not installed) must not stop the others
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"{name}: skipped: {msg}", file=sys.stderr)
            res = {"engine": name, "error": msg}
            if isinstance(e, NotInstalled):
                res["not_installed"] = True
            close_quietly(locals().get("eng"))
        results.append(res)
    try:
        for ef in args.ef_search:
            best = {}
            for rnd in range(args.rounds):
                for eng, res in engines:
                    if "error" in res:
                        continue
                    try:
                        out, lat = eng.measure(ef)
                    except Exception as e:
                        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                        print(f"{eng.name}: failed at ef_search {ef}: {msg}", file=sys.stderr)
                        res["error"] = msg
                        continue
                    summary = latency_summary(lat, truth, out, args.k, ef)
                    summary["cpu_ms"] = getattr(eng, "last_cpu_ms", None)
                    summary["round_qps"] = best.get(eng.name, {}).get("round_qps", []) + [summary["qps"]]
                    cpus = [c for c in (best.get(eng.name, {}).get("cpu_ms"), summary["cpu_ms"]) if c is not None]
                    if eng.name not in best or summary["qps"] > best[eng.name]["qps"]:
                        best[eng.name] = summary
                    else:
                        best[eng.name]["round_qps"] = summary["round_qps"]
                    best[eng.name]["cpu_ms"] = min(cpus) if cpus else None  # the least CPU of the rounds
            for eng, res in engines:
                if eng.name in best and "error" not in res:
                    res["sweep"].append(best[eng.name])
                    progress(eng.name, best[eng.name])
    finally:
        for eng, _ in engines:
            close_quietly(eng)
    return results


def close_quietly(eng):
    if eng is None:
        return
    try:
        eng.close()
    except Exception as e:
        print(f"{eng.name}: cleanup failed: {e}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------------
# Output


def progress(engine, s):
    cpu = f" cpu={s['cpu_ms']:.3f}ms" if s.get("cpu_ms") is not None else ""
    print(
        f"  {engine}: ef_search={s['ef_search']} recall={s['recall']:.4f} qps={s['qps']:.0f}{cpu}",
        file=sys.stderr,
        flush=True,
    )


def mib(b):
    return f"{b / (1024 * 1024):.1f} MiB"


def print_table(res, args):
    title = f"{res['engine']} {res.get('version', '')}".strip()
    print()
    print(title)
    print("-" * len(title))
    if "error" in res:
        print(f"skipped: {res['error']}")
        return
    cpu = f" (CPU {res['build_cpu_s']:.2f} s)" if res.get("build_cpu_s") is not None else ""
    line = ("reused (not built), " if res.get("reused") else f"build {res['build_s']:.2f} s{cpu}, ") + \
        f"index {mib(res['index_bytes'])}"
    if "load_s" in res:
        line += f", load {res['load_s']:.2f} s, table {mib(res['table_bytes'])}"
    print(line)
    if res.get("index_used") is False:
        print("WARNING: the query plan did not use the index")
    for notice in res.get("build_notices", []):
        print(f"build notice: {notice}")
    print(f"{'ef_search':>9}  {'recall@' + str(args.k):>9}  {'QPS':>9}  {'p50 ms':>8}  {'p99 ms':>8}  {'CPU ms':>8}")
    for s in res["sweep"]:
        cpu = f"{s['cpu_ms']:>8.3f}" if s.get("cpu_ms") is not None else f"{'-':>8}"
        print(
            f"{s['ef_search']:>9}  {s['recall']:>9.4f}  {s['qps']:>9.1f}  {s['p50_ms']:>8.3f}  {s['p99_ms']:>8.3f}  {cpu}"
        )


# ---------------------------------------------------------------------------------------------------
# QPS at equal recall


def qps_at_recall(sweep, target):
    """QPS at recall `target`, linear in recall between the two sweep points (in ef_search order) that
    bracket it: the first point reaching `target` and the one before it. Returns (qps, ef_search, how):
    how is "exact" (interpolated or hit), "above" (the smallest ef_search already exceeds the target: the
    QPS at the target is at least that point's, which is returned) or "unreached" (no point reaches it;
    qps None)."""
    points = sorted(sweep, key=lambda s: s["ef_search"])
    for i, s in enumerate(points):
        if s["recall"] >= target:
            if i == 0:
                return (s["qps"], float(s["ef_search"]), "exact" if s["recall"] == target else "above")
            lo = points[i - 1]
            span = s["recall"] - lo["recall"]
            t = (target - lo["recall"]) / span if span > 0 else 1.0
            qps = lo["qps"] + t * (s["qps"] - lo["qps"])
            ef = lo["ef_search"] + t * (s["ef_search"] - lo["ef_search"])
            return (qps, ef, "exact")
    return (None, None, "unreached")


def cpu_at_recall(sweep, target):
    """CPU ms per query at recall `target`, interpolated like qps_at_recall (None when a bracketing point has no
    CPU figure or the sweep does not bracket the target)."""
    points = sorted(sweep, key=lambda s: s["ef_search"])
    for i, s in enumerate(points):
        if s["recall"] >= target:
            if i == 0 or s.get("cpu_ms") is None or points[i - 1].get("cpu_ms") is None:
                return None
            lo = points[i - 1]
            span = s["recall"] - lo["recall"]
            t = (target - lo["recall"]) / span if span > 0 else 1.0
            return lo["cpu_ms"] + t * (s["cpu_ms"] - lo["cpu_ms"])
    return None


def equal_recall(results, targets):
    """{engine: {target: (qps, ef, how)}} for the engines that ran."""
    out = {}
    for res in results:
        if "error" not in res:
            out[res["engine"]] = {t: qps_at_recall(res["sweep"], t) for t in targets}
    return out


def fmt_qps(entry):
    qps, _, how = entry
    if how == "unreached":
        return "n/a"
    return (">" if how == "above" else "") + f"{qps:.0f}"


def fmt_ratio(a, b):
    """a / b when both are interpolated values; bounds when one is a lower bound; else n/a."""
    if a is None or b is None or a[2] == "unreached" or b[2] == "unreached":
        return "n/a"
    if a[2] == "exact" and b[2] == "exact":
        return f"{a[0] / b[0]:.2f}x"
    if a[2] == "above" and b[2] == "exact":
        return f">{a[0] / b[0]:.2f}x"
    if a[2] == "exact" and b[2] == "above":
        return f"<{a[0] / b[0]:.2f}x"
    return "n/a"


def print_comparison(results, args):
    """One table: QPS of each engine at recall 0.90 / 0.95 / 0.99 and s5vector's ratios."""
    eq = equal_recall(results, args.recall_targets)
    names = [e for e in ALL_ENGINES if e in eq]
    print()
    title = f"QPS at equal recall@{args.k} (linear in recall between the bracketing ef_search points)"
    print(title)
    print("-" * len(title))
    for engine in ALL_ENGINES:
        if engine in args.engines and engine not in eq:
            err = next((r["error"] for r in results if r["engine"] == engine and "error" in r), "not run")
            print(f"{engine}: {err}")
    header = f"{'recall':>6}" + "".join(f"  {n + ' QPS':>13}  {'(ef)':>6}" for n in names)
    ratios = [o for o in ("pgvector", "faiss") if "s5vector" in eq and o in eq]
    header += "".join(f"  {'s5v/' + ('pgv' if o == 'pgvector' else o):>10}" for o in ratios)
    print(header)
    for t in args.recall_targets:
        line = f"{t:>6.2f}"
        for n in names:
            entry = eq[n][t]
            ef = f"{entry[1]:.0f}" if entry[1] is not None else "-"
            line += f"  {fmt_qps(entry):>13}  {ef:>6}"
        for o in ratios:
            line += f"  {fmt_ratio(eq['s5vector'][t], eq[o][t]):>10}"
        print(line)
    print("n/a: the sweep does not reach that recall; >X: the smallest ef_search already exceeds it")
    built = {r["engine"]: r for r in results if "error" not in r}
    # CPU per query at equal recall (the backend's user + system time for PostgreSQL, this process's for faiss):
    # less disturbed than wall-clock QPS by other load on a shared machine.
    cpu = {n: {t: cpu_at_recall(built[n]["sweep"], t) for t in args.recall_targets} for n in names}
    if any(v is not None for per in cpu.values() for v in per.values()):
        print()
        print(f"{'recall':>6}" + "".join(f"  {n + ' CPU ms':>16}" for n in names) +
              "".join(f"  {('pgv' if o == 'pgvector' else o) + '/s5v CPU':>13}" for o in ratios))
        for t in args.recall_targets:
            line = f"{t:>6.2f}"
            for n in names:
                line += f"  {cpu[n][t]:>16.3f}" if cpu[n][t] is not None else f"  {'-':>16}"
            for o in ratios:
                a, b = cpu["s5vector"][t], cpu[o][t]
                line += f"  {b / a:>12.2f}x" if a and b else f"  {'n/a':>13}"
            print(line)
        print("CPU ms: per query, interpolated in recall like QPS; pgv/s5v CPU > 1 means s5vector needs less")
    if any(r.get("reused") for r in built.values()):
        print("build: not measured (--reuse)")
    elif "s5vector" in built:
        s = built["s5vector"]
        parts = [f"s5vector {s['build_s']:.2f} s"]
        for o in ("pgvector", "faiss"):
            if o in built:
                parts.append(f"{o} {built[o]['build_s']:.2f} s (s5v/{o} {s['build_s'] / built[o]['build_s']:.2f}x)")
        print("build: " + ", ".join(parts))
        if all(built[o].get("build_cpu_s") for o in ["s5vector"] + [o for o in ("pgvector", "faiss") if o in built]):
            cparts = [f"s5vector {s['build_cpu_s']:.2f} s"]
            for o in ("pgvector", "faiss"):
                if o in built:
                    cparts.append(f"{o} {built[o]['build_cpu_s']:.2f} s "
                                  f"(s5v/{o} {s['build_cpu_s'] / built[o]['build_cpu_s']:.2f}x)")
            print("build CPU: " + ", ".join(cparts))
        if "pgvector" in built:
            pg = built["pgvector"]
            print(f"index: s5vector {mib(s['index_bytes'])}, pgvector {mib(pg['index_bytes'])} "
                  f"({s['index_bytes'] / pg['index_bytes']:.2f}x)")
    # Recall at equal ef_search (graph quality), for the engines that swept the same values.
    if len(names) > 1:
        print()
        print(f"{'ef_search':>9}" + "".join(f"  {n + ' recall':>15}" for n in names))
        efs = [s["ef_search"] for s in built[names[0]]["sweep"]]
        for ef in efs:
            line = f"{ef:>9}"
            for n in names:
                hit = [s for s in built[n]["sweep"] if s["ef_search"] == ef]
                line += f"  {hit[0]['recall']:>15.4f}" if hit else f"  {'-':>15}"
            print(line)
    return eq


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="synthetic",
                   help="synthetic | fashion-mnist | " + " | ".join(PREPARED) + " | fvecs:PATH")
    p.add_argument("--metric", choices=sorted(METRICS),
                   help="distance: l2 or cosine (default: cosine for " + ", ".join(PREPARED) + ", l2 otherwise)")
    p.add_argument("--n", type=int, default=0, help="base vectors (default: 100000 synthetic, all otherwise)")
    p.add_argument("--queries", type=int, default=1000, help="query vectors (default 1000)")
    p.add_argument("--query-fvecs", help="queries from this .fvecs file (with --dataset fvecs:PATH)")
    p.add_argument("--dim", type=int, default=128, help="synthetic: dimensions (default 128)")
    p.add_argument("--clusters", type=int, default=1000, help="synthetic: clusters (default 1000)")
    p.add_argument("--cluster-std", type=float, default=1.5,
                   help="synthetic: spread within a cluster (1.5: about 17%% of true neighbours from other clusters)")
    p.add_argument("--seed", type=int, default=42, help="synthetic: random seed (default 42)")
    p.add_argument("--k", type=int, default=10, help="neighbours per query (default 10)")
    p.add_argument("--m", type=int, default=16, help="HNSW m (default 16)")
    p.add_argument("--ef-construction", type=int, default=64, help="HNSW ef_construction (default 64)")
    p.add_argument(
        "--ef-search",
        default="10,20,40,80,160,320",
        type=lambda s: [int(x) for x in s.split(",") if x],
        help="comma-separated ef_search sweep (default 10,20,40,80,160,320)",
    )
    p.add_argument(
        "--recall-targets",
        default="0.90,0.95,0.99",
        type=lambda s: [float(x) for x in s.split(",") if x],
        help="recalls at which QPS is interpolated and compared (default 0.90,0.95,0.99)",
    )
    p.add_argument("--engines", default=",".join(ALL_ENGINES), help="comma-separated subset of " + ",".join(ALL_ENGINES))
    p.add_argument("--dsn", help="libpq DSN of the database with s5vector")
    p.add_argument("--pgvector-dsn", help="libpq DSN of a database with pgvector's vector extension")
    p.add_argument("--table", default="hnsw_bench_items", help="table name (dropped and recreated)")
    p.add_argument("--copy-format", choices=("binary", "text"), default="binary", help="COPY format (binary)")
    p.add_argument("--maintenance-work-mem", default="2GB", help="for CREATE INDEX (default 2GB)")
    p.add_argument("--rounds", type=int, default=1,
                   help="sweeps per engine, interleaved; the best QPS per ef_search is kept (default 1)")
    p.add_argument("--warmup", type=int, default=100, help="untimed queries before each ef_search (100)")
    p.add_argument("--keep", action="store_true", help="keep the tables afterwards")
    p.add_argument("--reuse", action="store_true",
                   help="use the table and index an earlier --keep run left (same --table and row count) instead of "
                        "loading and building them again (build time is then not measured)")
    p.add_argument("--json", help="write all results to this file")
    args = p.parse_args(argv)
    if args.metric is None:
        args.metric = PREPARED[args.dataset][2] if args.dataset in PREPARED else "l2"
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    for e in args.engines:
        if e not in ALL_ENGINES:
            p.error(f"unknown engine {e!r}")
    return args


def main(argv):
    args = parse_args(argv)
    t0 = time.perf_counter()
    name, base, queries = load_dataset(args)
    print(f"dataset: {name}: {base.shape[0]} x {base.shape[1]}, {len(queries)} queries "
          f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    t0 = time.perf_counter()
    truth = ground_truth(base, queries, args.k, metric=args.metric)
    print(f"ground truth: {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    results = run_engines(base, queries, truth, args)

    print(f"\ndataset: {name}, {base.shape[0]} x {base.shape[1]}, {len(queries)} queries, k={args.k}, "
          f"metric {args.metric}")
    print(f"index: m={args.m}, ef_construction={args.ef_construction}; queries one at a time, single client")
    for res in results:
        print_table(res, args)
    eq = print_comparison(results, args)

    if args.json:
        out = {
            "dataset": {"name": name, "spec": args.dataset, "n": int(base.shape[0]), "dim": int(base.shape[1]),
                        "queries": int(len(queries))},
            "params": {"k": args.k, "metric": args.metric, "m": args.m, "ef_construction": args.ef_construction,
                       "ef_search": args.ef_search, "maintenance_work_mem": args.maintenance_work_mem,
                       "warmup": args.warmup, "rounds": args.rounds, "copy_format": args.copy_format},
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "processor": cpu_model()},
            "results": results,
            "equal_recall": {
                engine: {f"{t:.2f}": {"qps": v[0], "ef_search": v[1], "how": v[2]} for t, v in per.items()}
                for engine, per in eq.items()
            },
        }
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
        print(f"\nwrote {args.json}")
    return 0 if all("error" not in r or r.get("not_installed") for r in results) else 1


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
