-- An s5vector index on a partitioned table: one index per partition (each with its own hot and cold tiers), and
-- ORDER BY ... LIMIT across the partitions as a Merge Append of index scans, each in distance order.
SET client_min_messages = warning;
CREATE TABLE cp (id int, v vector(3), ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
-- Time partitions relative to now: older than 90 days, 90 to 45 days (in hours: exact across DST), and the newest (default).
DO $$
BEGIN
	EXECUTE format('CREATE TABLE cp_old PARTITION OF cp FOR VALUES FROM (%L) TO (%L)', now() - interval '2 years',
	               now() - interval '2160 hours');
	EXECUTE format('CREATE TABLE cp_mid PARTITION OF cp FOR VALUES FROM (%L) TO (%L)', now() - interval '2160 hours',
	               now() - interval '1080 hours');
END $$;
CREATE TABLE cp_new PARTITION OF cp DEFAULT;
-- 3000 rows, one an hour back from now (125 days).
INSERT INTO cp SELECT i, ARRAY[sin(i), cos(i * 1.3), sin(i * 0.7)]::vector,
	now() - (i || ' hours')::interval - interval '30 minutes' FROM generate_series(0, 2999) i;
SELECT tableoid::regclass AS part, count(*) FROM cp GROUP BY 1 ORDER BY 1;
-- One index on the parent: PostgreSQL creates one on each partition. Under a 30-day (720 hours) window the two old
-- partitions are cold entirely, the newest holds both tiers.
CREATE INDEX cp_idx ON cp USING s5vector (v, ts) WITH (hot_window = '720 hours', lists = 8);
SELECT c.relname, s.hot_elements, s.cold_rows
	FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid, LATERAL s5vector_index_stats(c.oid) s
	WHERE i.inhparent = 'cp_idx'::regclass ORDER BY 1;

SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM cp ORDER BY v <-> '[0.5,0.5,0.5]' LIMIT 10;
-- The exact answer (a sequential scan) and the index's, across partitions.
RESET enable_seqscan;
SET enable_indexscan = off;
CREATE TEMP TABLE cpq AS SELECT g AS qid, ARRAY[sin(g * 7.1), cos(g * 2.3), sin(g * 1.9)]::vector AS qv
	FROM generate_series(1, 10) g;
CREATE TEMP TABLE cpexact AS SELECT cpq.qid, n.id FROM cpq,
	LATERAL (SELECT id FROM cp ORDER BY v <-> cpq.qv, id LIMIT 10) n;
RESET enable_indexscan;
SET enable_seqscan = off;
SET s5vector.probes = 8;
SET s5vector.ef_search = 100;
SELECT count(*) AS matches FROM cpq CROSS JOIN LATERAL (SELECT id FROM cp ORDER BY v <-> cpq.qv LIMIT 10) n,
	cpexact e WHERE e.qid = cpq.qid AND e.id = n.id;
-- The Merge Append's output is in distance order (each partition's scan is, strict_order), none missing.
SELECT count(*) AS rows, count(*) FILTER (WHERE step < -1e-6) AS inversions FROM
	(SELECT d - lag(d) OVER (ORDER BY rn) AS step FROM
	 (SELECT v <-> '[0.5,0.5,0.5]' AS d, row_number() OVER () AS rn FROM
	  (SELECT v FROM cp ORDER BY v <-> '[0.5,0.5,0.5]' LIMIT 200) s) t) u;
-- Partition pruning on the partition key, and the age column inside each index.
EXPLAIN (COSTS OFF) SELECT id FROM cp WHERE ts >= now() - interval '1440 hours' ORDER BY v <-> '[0.5,0.5,0.5]' LIMIT 10;
SELECT count(*), count(DISTINCT id) FROM
	(SELECT id FROM cp WHERE ts >= now() - interval '1440 hours' ORDER BY v <-> '[0.5,0.5,0.5]' LIMIT 100000) s;
SELECT count(*) FROM cp WHERE ts >= now() - interval '1440 hours';
-- A new partition gets its index; rows inserted through the parent land in it.
DO $$
BEGIN
	EXECUTE format('CREATE TABLE cp_older PARTITION OF cp FOR VALUES FROM (%L) TO (%L)', now() - interval '10 years',
	               now() - interval '9 years');
END $$;
INSERT INTO cp VALUES (9999, '[0.5,0.5,0.5]', now() - interval '9 years 6 months');
SELECT hot_elements, cold_rows FROM s5vector_index_stats('cp_older_v_ts_idx');
SELECT id FROM cp ORDER BY v <-> '[0.5,0.5,0.5]' LIMIT 1;
SELECT count(*) FROM pg_inherits WHERE inhparent = 'cp_idx'::regclass;
RESET s5vector.probes;
RESET s5vector.ef_search;
RESET enable_seqscan;
DROP TABLE cp;
