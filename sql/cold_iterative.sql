-- s5vector.iterative_scan: off | relaxed_order | strict_order (pgvector's values; the old boolean's on/off spellings
-- are kept as aliases). strict_order, the default, returns rows in exact distance order and widens the cold tier by
-- itself when an unread list may hold a nearer row (honest per-list bounds), so a filtered query is neither out of
-- order nor short of its LIMIT.
SET client_min_messages = warning;
LOAD 's5vector'; -- the GUCs exist once the library is loaded
SHOW s5vector.iterative_scan;
SET s5vector.iterative_scan = relaxed_order;
SHOW s5vector.iterative_scan;
SET s5vector.iterative_scan = off;
SHOW s5vector.iterative_scan;
SET s5vector.iterative_scan = on; -- alias of strict_order
SHOW s5vector.iterative_scan;
SET s5vector.iterative_scan = false; -- alias of off
SHOW s5vector.iterative_scan;
SET s5vector.iterative_scan = sometimes;
RESET s5vector.iterative_scan;

-- A pure cold index (hot_window = '0'): 40 overlapping clusters of 100 rows in 8 dimensions, 40 lists.
CREATE TABLE ci (id int PRIMARY KEY, v vector(8));
INSERT INTO ci SELECT i, (SELECT array_agg((i % 40) * 0.4 + sin(i * d * 1.7) * 1.5) FROM generate_series(1, 8) d)::vector
	FROM generate_series(1, 4000) i;
CREATE INDEX ci_idx ON ci USING s5vector (v) WITH (hot_window = '0', lists = 40);
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('ci_idx');

-- The exact answers of a filtered query (a sequential scan), 20 queries x 30 rows with id % 7 = 3.
CREATE TEMP TABLE ciq AS SELECT id AS qid, v AS qv FROM ci WHERE id % 200 = 11;
CREATE TEMP TABLE ciexact AS SELECT ciq.qid, n.id, n.rank FROM ciq,
	LATERAL (SELECT id, row_number() OVER (ORDER BY v <-> ciq.qv, id) AS rank FROM ci WHERE id % 7 = 3
	         ORDER BY v <-> ciq.qv, id LIMIT 30) n;
SELECT count(*) AS queries FROM ciq;
SET enable_seqscan = off;
SET s5vector.probes = 1;
EXPLAIN (COSTS OFF) SELECT id FROM ci WHERE id % 7 = 3 ORDER BY v <-> '[0,0,0,0,0,0,0,0]' LIMIT 30;

-- The index's answers under each value, with their rank and the distance's step from the previous row.
CREATE FUNCTION ci_answers() RETURNS TABLE (qid int, id int, rank bigint, step float8) LANGUAGE sql AS $$
	SELECT ciq.qid, n.id, n.rank, n.d - lag(n.d) OVER (PARTITION BY ciq.qid ORDER BY n.rank) FROM ciq,
	LATERAL (SELECT id, v <-> ciq.qv AS d, row_number() OVER () AS rank FROM
	         (SELECT id, v FROM ci WHERE id % 7 = 3 ORDER BY v <-> ciq.qv LIMIT 30) s) n
$$;

-- strict_order (the default): 30 rows a query, every one the exact answer at its exact rank (ties aside), never
-- a step back in distance.
RESET s5vector.iterative_scan;
CREATE TEMP TABLE a_strict AS SELECT * FROM ci_answers();
SELECT count(*) AS rows, count(*) FILTER (WHERE step < -1e-6) AS inversions FROM a_strict;
SELECT count(*) AS same_rank FROM a_strict a JOIN ciexact e ON e.qid = a.qid AND e.rank = a.rank
	JOIN ci x ON x.id = a.id JOIN ci y ON y.id = e.id JOIN ciq q ON q.qid = a.qid
	WHERE a.id = e.id OR (x.v <-> q.qv) = (y.v <-> q.qv);

-- relaxed_order: also never short of the LIMIT (the scan widens), but rows come list by list: a later list's row
-- can follow a farther one of an earlier list. This is what the default did before the bounds.
SET s5vector.iterative_scan = relaxed_order;
CREATE TEMP TABLE a_relaxed AS SELECT * FROM ci_answers();
SELECT count(*) AS rows, count(DISTINCT (qid, id)) AS distinct_rows FROM a_relaxed;
SELECT count(*) FILTER (WHERE step < -1e-6) > 0 AS some_inversions FROM a_relaxed;
SELECT count(*) < 20 * 30 AS not_all_exact FROM a_relaxed a JOIN ciexact e ON e.qid = a.qid AND e.rank = a.rank
	WHERE a.id = e.id;

-- off: the first pass only (probes lists, no widening): in distance order, but a filtered query can be short.
SET s5vector.iterative_scan = off;
CREATE TEMP TABLE a_off AS SELECT * FROM ci_answers();
SELECT count(*) < 20 * 30 AS short, count(*) FILTER (WHERE step < -1e-6) AS inversions FROM a_off;

-- Read to the end: every row exactly once under each value that widens.
RESET s5vector.iterative_scan;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM ci ORDER BY v <-> '[1,1,1,1,1,1,1,1]') s;
SET s5vector.iterative_scan = relaxed_order;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM ci ORDER BY v <-> '[1,1,1,1,1,1,1,1]') s;

-- strict_order with max_probes: lists past it may not produce, so they do not hold rows back.
RESET s5vector.iterative_scan;
SET s5vector.max_probes = 3;
SELECT count(*) FILTER (WHERE step < -1e-6) AS inversions FROM ci_answers();
RESET s5vector.max_probes;

-- Cosine: the bounds hold on the unit sphere too.
CREATE INDEX ci_cos ON ci USING s5vector (v vector_cosine_ops) WITH (hot_window = '0', lists = 40);
DROP INDEX ci_idx;
CREATE TEMP TABLE ccexact AS SELECT ciq.qid, n.id, n.rank FROM ciq,
	LATERAL (SELECT id, row_number() OVER (ORDER BY v <=> ciq.qv, id) AS rank FROM ci WHERE id % 7 = 3
	         ORDER BY v <=> ciq.qv, id LIMIT 30) n;
SELECT count(*) AS rows, count(*) FILTER (WHERE n.step < -1e-6) AS inversions,
	count(*) FILTER (WHERE n.id = e.id OR n.d = (y.v <=> ciq.qv)) AS same_rank FROM ciq,
	LATERAL (SELECT id, d, rank, d - lag(d) OVER (ORDER BY rank) AS step FROM
	         (SELECT id, v <=> ciq.qv AS d, row_number() OVER () AS rank FROM
	          (SELECT id, v FROM ci WHERE id % 7 = 3 ORDER BY v <=> ciq.qv LIMIT 30) s) t) n,
	ccexact e, ci y WHERE e.qid = ciq.qid AND e.rank = n.rank AND y.id = e.id;

RESET s5vector.probes;
RESET enable_seqscan;
DROP FUNCTION ci_answers();
DROP TABLE ci;
