-- Cold tier: VACUUM marks dead heap TIDs dead in their lists, so scans never return them (their heap slots are
-- reused by later rows).
SET client_min_messages = warning;
CREATE TABLE cv (id int, v vector(2)) WITH (autovacuum_enabled = off);
INSERT INTO cv SELECT i, ARRAY[sin(i), cos(i)]::vector FROM generate_series(1, 1000) i;
CREATE INDEX cv_idx ON cv USING s5vector (v) WITH (hot_window = '0', lists = 10);
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cv_idx');
DELETE FROM cv WHERE id % 2 = 0;
VACUUM cv;
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cv_idx');
SET enable_seqscan = off;
SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE id % 2 = 0) AS deleted FROM
	(SELECT id FROM cv ORDER BY v <-> '[0,1]') s;
-- New rows take the freed heap slots; each is found once, at its own distance.
INSERT INTO cv SELECT 2000 + i, ARRAY[10 + i, 10]::vector FROM generate_series(1, 500) i;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM cv ORDER BY v <-> '[0,1]') s;
SELECT id FROM cv ORDER BY v <-> '[11,10]' LIMIT 3;
SELECT id, round((v <-> '[0,1]')::numeric, 3) AS d FROM cv ORDER BY v <-> '[0,1]' LIMIT 3;
SELECT check_name, ok FROM s5vector_verify('cv_idx');
DROP TABLE cv;
