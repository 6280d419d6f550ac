-- Cold tier: INSERT by age (an old row to its nearest list, or staging until the tier trains; a recent one to
-- the graph).
SET client_min_messages = warning;
CREATE TABLE ci (id int, v vector(3), ts timestamptz);
INSERT INTO ci SELECT i, ARRAY[sin(i), cos(i), sin(2 * i)]::vector, now() - (i || ' days')::interval
	FROM generate_series(1, 300) i;
CREATE INDEX ci_idx ON ci USING s5vector (v, ts) WITH (hot_window = '30 days', lists = 10);
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('ci_idx');
-- Old: cold. Recent: hot. NULL age: hot.
INSERT INTO ci VALUES (1001, '[5,5,5]', now() - interval '1 year');
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('ci_idx');
INSERT INTO ci VALUES (1002, '[6,6,6]', now());
INSERT INTO ci VALUES (1003, '[7,7,7]', NULL);
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('ci_idx');
SET enable_seqscan = off;
SELECT id FROM ci ORDER BY v <-> '[5,5,5]' LIMIT 3;
SELECT id FROM ci WHERE ts < now() - interval '100 days' ORDER BY v <-> '[5,5,5]' LIMIT 1;
SELECT check_name, ok FROM s5vector_verify('ci_idx');

-- A pure IVF index on an empty table: the first row creates the cold tier; rows wait in staging until
-- 4 * lists (at least 64) are there, then the tier trains and staging's rows move to their lists.
CREATE TABLE cp (id int, v vector(2));
CREATE INDEX cp_idx ON cp USING s5vector (v) WITH (hot_window = '0', lists = 8);
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cp_idx');
INSERT INTO cp SELECT i, ARRAY[sin(i), cos(i)]::vector FROM generate_series(1, 63) i;
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cp_idx');
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM cp ORDER BY v <-> '[0,1]') s;
INSERT INTO cp VALUES (64, '[0,1]');
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cp_idx');
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM cp ORDER BY v <-> '[0,1]') s;
INSERT INTO cp SELECT i, ARRAY[sin(i), cos(i)]::vector FROM generate_series(65, 500) i;
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cp_idx');
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM cp ORDER BY v <-> '[0,1]') s;
SELECT id FROM cp ORDER BY v <-> '[0,1]' LIMIT 1;
SELECT check_name, ok FROM s5vector_verify('cp_idx');
-- A rolled-back insert leaves nothing visible.
BEGIN;
INSERT INTO cp VALUES (9999, '[100,100]');
ROLLBACK;
SELECT count(*) FROM (SELECT id FROM cp ORDER BY v <-> '[100,100]' LIMIT 5) s WHERE id = 9999;
DROP TABLE cp;
DROP TABLE ci;
