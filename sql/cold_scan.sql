-- Cold tier: one scan over both tiers (graph candidates and the nearest lists, merged by distance, each row once).
SET client_min_messages = warning;
CREATE TABLE cs (id int PRIMARY KEY, v vector(3), ts timestamptz);
INSERT INTO cs SELECT i, ARRAY[sin(i), cos(i * 1.3), sin(i * 0.7)]::vector,
	now() - (i || ' hours')::interval - interval '30 minutes' FROM generate_series(0, 2999) i;
CREATE INDEX cs_idx ON cs USING s5vector (v, ts) WITH (hot_window = '10 days', lists = 20);
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cs_idx');

-- The exact answer, from a sequential scan.
SET enable_indexscan = off;
CREATE TEMP TABLE q AS SELECT g AS qid, ARRAY[sin(g * 7.1), cos(g * 2.3), sin(g * 1.9)]::vector AS qv
	FROM generate_series(1, 20) g;
CREATE TEMP TABLE exact AS SELECT q.qid, n.id, n.rank FROM q,
	LATERAL (SELECT id, row_number() OVER (ORDER BY v <-> q.qv, id) AS rank FROM cs ORDER BY v <-> q.qv, id LIMIT 10) n;
RESET enable_indexscan;
SET enable_seqscan = off;

EXPLAIN (COSTS OFF) SELECT id FROM cs ORDER BY v <-> '[0,0,0]' LIMIT 10;

-- With every list probed, the index answers exactly (20 queries x 10 rows).
SET s5vector.probes = 20;
SET s5vector.ef_search = 100;
SELECT count(*) AS matches FROM q CROSS JOIN LATERAL (SELECT id FROM cs ORDER BY v <-> q.qv LIMIT 10) n, exact e
	WHERE e.qid = q.qid AND e.id = n.id;
-- Both tiers are among the answers.
SELECT count(*) FILTER (WHERE cs.ts < now() - interval '10 days') AS cold,
	count(*) FILTER (WHERE cs.ts >= now() - interval '10 days') AS hot FROM exact JOIN cs USING (id);

-- Read to the end: every row exactly once, whatever the probes (the scan widens up to s5vector.max_probes).
SET s5vector.probes = 1;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM cs ORDER BY v <-> '[0.5,0.5,0.5]') s;
-- The rows come in distance order within the probed lists: no short LIMIT under a filter.
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM cs WHERE id % 13 = 0 ORDER BY v <-> '[0.5,0.5,0.5]' LIMIT 100) s;
-- max_probes caps the widening: with 1 list and the graph's exact pass unavailable the scan stops early.
SET s5vector.max_probes = 2;
SET s5vector.max_scan_tuples = 100;
SELECT count(*) < 3000 AS capped FROM (SELECT id FROM cs ORDER BY v <-> '[0.5,0.5,0.5]') s;
RESET s5vector.max_scan_tuples;
RESET s5vector.max_probes;

-- An age predicate: only matching rows, each once, from both tiers or one; lists whose age range cannot match
-- are not read.
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM cs WHERE ts < now() - interval '20 days'
	ORDER BY v <-> '[0.5,0.5,0.5]') s;
SELECT count(*) FROM cs WHERE ts < now() - interval '20 days';
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM cs WHERE ts >= now() - interval '5 days'
	ORDER BY v <-> '[0.5,0.5,0.5]') s;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM cs WHERE ts BETWEEN now() - interval '15 days'
	AND now() - interval '9 days' ORDER BY v <-> '[0.5,0.5,0.5]') s;
SELECT count(*) FROM cs WHERE ts BETWEEN now() - interval '15 days' AND now() - interval '9 days';
SELECT count(*) FROM (SELECT id FROM cs WHERE ts < '2000-01-01' ORDER BY v <-> '[0.5,0.5,0.5]') s;

-- A NULL query has no order: every row, unordered (hot pages, then every list).
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM cs ORDER BY v <-> NULL) s;

-- The nearest row of each tier is found at default settings.
RESET s5vector.probes;
SELECT id FROM cs ORDER BY v <-> (SELECT v FROM cs WHERE id = 2500) LIMIT 1;
SELECT id FROM cs ORDER BY v <-> (SELECT v FROM cs WHERE id = 100) LIMIT 1;

-- Recall on a clustered set at default probes (10 of 40 lists): 40 clusters of 100 rows in 8 dimensions.
CREATE TABLE cr (id int, v vector(8));
INSERT INTO cr SELECT i, (SELECT array_agg((i % 40) * 3 + sin(i * d) * 0.5) FROM generate_series(1, 8) d)::vector
	FROM generate_series(1, 4000) i;
CREATE INDEX cr_idx ON cr USING s5vector (v) WITH (hot_window = '0', lists = 40);
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cr_idx');
SET enable_indexscan = off;
RESET enable_seqscan;
CREATE TEMP TABLE crq AS SELECT id AS qid, v AS qv FROM cr WHERE id % 200 = 7;
CREATE TEMP TABLE crexact AS SELECT crq.qid, n.id FROM crq,
	LATERAL (SELECT id FROM cr ORDER BY v <-> crq.qv, id LIMIT 10) n;
RESET enable_indexscan;
SET enable_seqscan = off;
SELECT count(*) AS queries FROM crq;
EXPLAIN (COSTS OFF) SELECT n.id FROM crq CROSS JOIN LATERAL (SELECT id FROM cr ORDER BY v <-> crq.qv LIMIT 10) n;
SELECT count(*) >= 0.95 * 10 * (SELECT count(*) FROM crq) AS recall_ok
	FROM crq CROSS JOIN LATERAL (SELECT id FROM cr ORDER BY v <-> crq.qv LIMIT 10) n, crexact e
	WHERE e.qid = crq.qid AND e.id = n.id;

-- GUC ranges.
SET s5vector.probes = 0;
SET s5vector.probes = 40000;
SET s5vector.max_probes = -1;
DROP TABLE cr;
DROP TABLE cs;
