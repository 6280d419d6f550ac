-- ALTER INDEX ... SET (hot_window = ...): the window is a policy, not a structure. The next inserts and the next
-- migration honour the new value without a rebuild; a negative or non-interval value is refused at ALTER.
SET client_min_messages = warning;
CREATE TABLE ca (id int, v vector(3), ts timestamptz);
INSERT INTO ca SELECT i, ARRAY[sin(i), cos(i * 1.3), sin(i * 0.7)]::vector, now() - (i || ' days')::interval
	FROM generate_series(1, 400) i;
-- Built as a pure graph: every row hot, no cold tier.
CREATE INDEX ca_idx ON ca USING s5vector (v, ts) WITH (hot_window = 'infinity', lists = 8);
SELECT hot_window, hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('ca_idx');
SELECT s5vector_migrate('ca_idx');

-- A 100-day window: rows older than that now migrate; an old row inserted now goes straight to a cold list.
ALTER INDEX ca_idx SET (hot_window = '100 days');
SELECT hot_window FROM s5vector_index_stats('ca_idx');
SELECT reloptions FROM pg_class WHERE relname = 'ca_idx';
SELECT s5vector_migrate('ca_idx');
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('ca_idx');
INSERT INTO ca VALUES (1001, '[0.1,0.2,0.3]', now() - interval '200 days');
INSERT INTO ca VALUES (1002, '[0.1,0.2,0.4]', now() - interval '50 days');
SELECT hot_elements, cold_rows FROM s5vector_index_stats('ca_idx');

-- A wider window does not move rows back (cold rows stay cold), but new rows inside it go to the graph.
ALTER INDEX ca_idx SET (hot_window = '300 days');
INSERT INTO ca VALUES (1003, '[0.1,0.2,0.5]', now() - interval '200 days');
SELECT hot_elements, cold_rows FROM s5vector_index_stats('ca_idx');
SELECT s5vector_migrate('ca_idx');
SELECT hot_elements, cold_rows FROM s5vector_index_stats('ca_idx');

-- '0': everything is cold, migration empties the graph.
ALTER INDEX ca_idx SET (hot_window = '0');
SELECT s5vector_migrate('ca_idx');
INSERT INTO ca VALUES (1004, '[0.1,0.2,0.6]', now());
SELECT hot_elements, cold_rows FROM s5vector_index_stats('ca_idx');

-- Every row once, both tiers, verify clean.
SET enable_seqscan = off;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM ca ORDER BY v <-> '[0.5,0.5,0.5]') s;
SELECT id FROM ca ORDER BY v <-> '[0.1,0.2,0.5]' LIMIT 1;
RESET enable_seqscan;
SELECT check_name, ok FROM s5vector_verify('ca_idx') WHERE ok IS NOT TRUE;

-- Bad values are refused at ALTER with their SQLSTATE, and the window stays what it was.
CREATE FUNCTION ca_try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE sql;
	RETURN 'ok';
EXCEPTION WHEN others THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT ca_try($$ALTER INDEX ca_idx SET (hot_window = '-1 day')$$);
SELECT ca_try($$ALTER INDEX ca_idx SET (hot_window = 'soon')$$);
SELECT ca_try($$ALTER INDEX ca_idx SET (hot_window = '1 day ago')$$);
SELECT ca_try($$ALTER INDEX ca_idx SET (hot_window = '')$$);
SELECT hot_window FROM s5vector_index_stats('ca_idx');
-- RESET goes back to the default window (7 days).
ALTER INDEX ca_idx RESET (hot_window);
SELECT hot_window FROM s5vector_index_stats('ca_idx');
-- The frozen settings still cannot change without a rebuild... (m is a structure; ALTER accepts it, the index
-- keeps the value it was built with, as the stats show)
ALTER INDEX ca_idx SET (m = 8);
SELECT m FROM s5vector_index_stats('ca_idx');

DROP FUNCTION ca_try(text);
DROP TABLE ca;
