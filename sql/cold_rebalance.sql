-- s5vector_rebalance: a list far past the mean is split (2-means on its rows), drifted centroids are refreshed,
-- and rows no longer in their nearest list move there (add, wait for scans, remove); every row stays visible
-- exactly once and a strict scan stays in exact order. s5vector_list_stats shows the lists.
SET client_min_messages = warning;
CREATE TABLE cr (id int PRIMARY KEY, v vector(4), ts timestamptz);
-- 8 clusters of 50 rows: 8 lists of about 50.
INSERT INTO cr SELECT i, ARRAY[(i % 8) * 4 + sin(i), (i % 8) * 2 + cos(i), sin(i * 0.3), cos(i * 0.7)]::vector,
	'2020-01-01'::timestamptz + (i || ' hours')::interval FROM generate_series(1, 400) i;
CREATE INDEX cr_idx ON cr USING s5vector (v, ts) WITH (hot_window = '0', lists = 8);
SELECT count(*) AS lists, sum(rows) AS rows, min(rows) > 0 AS none_empty FROM s5vector_list_stats('cr_idx');
SELECT list, rows, min_age, max_age, local_bytes FROM s5vector_list_stats('cr_idx') ORDER BY list LIMIT 2;
-- Balanced: nothing to split, nothing drifted.
SELECT s5vector_rebalance('cr_idx');
-- 600 rows inserted into the region of cluster 0 (two sub-clusters): its list grows far past the mean.
INSERT INTO cr SELECT 1000 + i, ARRAY[CASE WHEN i % 2 = 0 THEN -3 ELSE 3 END + sin(i) * 0.5, cos(i) * 0.5,
	sin(i * 0.3), cos(i * 0.7)]::vector, '2021-01-01'::timestamptz + (i || ' hours')::interval
	FROM generate_series(1, 600) i;
SELECT max(rows) > 3 * avg(rows) AS unbalanced FROM s5vector_list_stats('cr_idx');
-- The exact answers before the rebalance.
CREATE TEMP TABLE crq AS SELECT id AS qid, v AS qv FROM cr WHERE id % 50 = 3;
CREATE TEMP TABLE crexact AS SELECT crq.qid, n.id, n.rank FROM crq,
	LATERAL (SELECT id, row_number() OVER (ORDER BY v <-> crq.qv, id) AS rank FROM cr
	         ORDER BY v <-> crq.qv, id LIMIT 20) n;
SELECT s5vector_rebalance('cr_idx') > 0 AS changed;
SELECT count(*) > 8 AS more_lists, sum(rows) >= 1000 AS rows_kept FROM s5vector_list_stats('cr_idx');
SELECT hot_elements, cold_rows, cold_lists > 8 AS split FROM s5vector_index_stats('cr_idx');
SELECT max(rows) <= 3 * avg(rows) + 64 AS balanced_now FROM s5vector_list_stats('cr_idx');
SELECT check_name, ok FROM s5vector_verify('cr_idx') WHERE ok IS NOT TRUE;
-- Every row exactly once; the strict scan (every list allowed) gives the exact answers at their exact rank.
SET enable_seqscan = off;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM cr ORDER BY v <-> '[0,0,0,0]') s;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM cr ORDER BY v <-> NULL) s;
SET s5vector.probes = 1;
SELECT count(*) AS same_rank FROM crq, LATERAL (SELECT id, row_number() OVER () AS rank FROM
	(SELECT id FROM cr ORDER BY v <-> crq.qv LIMIT 20) s) n, crexact e, cr x, cr y
	WHERE e.qid = crq.qid AND e.rank = n.rank AND x.id = n.id AND y.id = e.id
	AND (n.id = e.id OR (x.v <-> crq.qv) = (y.v <-> crq.qv));
SELECT count(*) * 20 AS expected FROM crq;
RESET s5vector.probes;
-- An age predicate still prunes by the lists' ranges.
SELECT count(*) FROM (SELECT id FROM cr WHERE ts >= '2021-01-01' ORDER BY v <-> '[0,0,0,0]') s;
RESET enable_seqscan;
-- Repeated, the steps settle (the first one's splits can leave a list for the next to split or refresh).
DO $$
DECLARE
	steps int := 0;
BEGIN
	WHILE steps < 5 AND s5vector_rebalance('cr_idx') > 0 LOOP
		steps := steps + 1;
	END LOOP;
	RAISE WARNING 'settled: %', steps < 5;
END $$;
SELECT s5vector_rebalance('cr_idx') AS after_settling;
SELECT check_name, ok FROM s5vector_verify('cr_idx') WHERE ok IS NOT TRUE;
-- Inserts go to the new lists.
INSERT INTO cr VALUES (5000, '[3,0,0,1]', now());
SELECT sum(rows) FROM s5vector_list_stats('cr_idx') s;
-- VACUUM after the move: the moved rows' old copies are dead already, live counts unchanged.
VACUUM cr;
SELECT cold_rows FROM s5vector_index_stats('cr_idx');
SELECT check_name, ok FROM s5vector_verify('cr_idx') WHERE ok IS NOT TRUE;

-- Without a cold tier: nothing to do; list_stats is empty.
CREATE INDEX cr_hot ON cr USING s5vector (v) WITH (hot_window = 'infinity');
SELECT s5vector_rebalance('cr_hot');
SELECT count(*) FROM s5vector_list_stats('cr_hot');
-- Errors: another access method (42809), NULL gives NULL.
SELECT s5vector_rebalance('cr_pkey');
SELECT * FROM s5vector_list_stats('cr_pkey');
SELECT s5vector_rebalance(NULL);
DROP TABLE cr;
