-- VACUUM reuses the space of dead cold rows: a row page with dead rows is compacted (its live rows slide down,
-- the list's and the tier's counters drop), and appends fill a compacted page of the list before the index grows.
SET client_min_messages = warning;
CREATE TABLE cvr (id int PRIMARY KEY, v vector(16));
INSERT INTO cvr SELECT i, (SELECT array_agg(sin(i * d) + (i % 4) * 3) FROM generate_series(1, 16) d)::vector
	FROM generate_series(1, 4000) i;
CREATE INDEX cvr_idx ON cvr USING s5vector (v) WITH (hot_window = '0', lists = 4);
SELECT cold_rows, cold_lists FROM s5vector_index_stats('cvr_idx');
SELECT sum(rows) AS rows, (sum(local_bytes) / 8192)::int AS row_pages FROM s5vector_list_stats('cvr_idx');
SELECT pg_relation_size('cvr_idx') / 8192 AS blocks \gset
-- Three rows in four deleted (in every list): VACUUM marks them dead and frees their slots.
DELETE FROM cvr WHERE (id / 4) % 4 <> 0;
VACUUM cvr;
SELECT cold_rows FROM s5vector_index_stats('cvr_idx');
SELECT sum(rows) AS rows_after_compaction FROM s5vector_list_stats('cvr_idx');
SELECT check_name, ok FROM s5vector_verify('cvr_idx') WHERE ok IS NOT TRUE;
-- 2500 new rows (cold: hot_window 0) fill the freed slots: the index does not grow.
INSERT INTO cvr SELECT i, (SELECT array_agg(sin(i * d) + (i % 4) * 3) FROM generate_series(1, 16) d)::vector
	FROM generate_series(10001, 12500) i;
SELECT cold_rows FROM s5vector_index_stats('cvr_idx');
SELECT pg_relation_size('cvr_idx') / 8192 - :blocks AS blocks_added;
SELECT check_name, ok FROM s5vector_verify('cvr_idx') WHERE ok IS NOT TRUE;
SET enable_seqscan = off;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM cvr ORDER BY v <-> (SELECT v FROM cvr WHERE id = 8)) s;
SELECT count(*) FROM cvr;
SELECT id FROM cvr ORDER BY v <-> (SELECT v FROM cvr WHERE id = 12000) LIMIT 1;
RESET enable_seqscan;
-- The staging list is compacted too (an index below the training threshold).
CREATE TABLE cvs (id int, v vector(2));
CREATE INDEX cvs_idx ON cvs USING s5vector (v) WITH (hot_window = '0', lists = 100);
INSERT INTO cvs SELECT i, ARRAY[sin(i), cos(i)]::vector FROM generate_series(1, 300) i;
SELECT list, rows FROM s5vector_list_stats('cvs_idx');
DELETE FROM cvs WHERE id <= 200;
VACUUM cvs;
SELECT list, rows FROM s5vector_list_stats('cvs_idx');
SELECT cold_rows FROM s5vector_index_stats('cvs_idx');
SELECT check_name, ok FROM s5vector_verify('cvs_idx') WHERE ok IS NOT TRUE;
DROP TABLE cvs;
DROP TABLE cvr;
