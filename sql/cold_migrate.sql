-- Cold tier: s5vector_migrate moves hot rows that aged past the window to the cold tier (cold insert, wait for
-- scans, removal from the graph with VACUUM's repair), each row staying visible exactly once.
SET client_min_messages = warning;
CREATE TABLE cm (id int, v vector(3), ts timestamptz);
INSERT INTO cm SELECT i, ARRAY[sin(i), cos(i * 1.3), sin(i * 0.7)]::vector, now() - (i || ' days')::interval
	FROM generate_series(1, 600) i;
-- A 4-second window: 600 rows cold at the build, in 10 lists.
CREATE INDEX cm_idx ON cm USING s5vector (v, ts) WITH (hot_window = '4 seconds', lists = 10);
-- 300 rows that are recent now, so hot.
INSERT INTO cm SELECT i, ARRAY[sin(i), cos(i * 1.3), sin(i * 0.7)]::vector, now() FROM generate_series(601, 900) i;
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cm_idx');
-- Nothing is old enough yet.
SELECT s5vector_migrate('cm_idx');
SELECT pg_sleep(4.5);
-- Batches: 100, then the rest; then nothing.
SELECT s5vector_migrate('cm_idx', 100);
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cm_idx');
SET enable_seqscan = off;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM cm ORDER BY v <-> '[0.5,0.5,0.5]') s;
SELECT s5vector_migrate('cm_idx');
SELECT s5vector_migrate('cm_idx');
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cm_idx');
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM cm ORDER BY v <-> '[0.5,0.5,0.5]') s;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM cm ORDER BY v <-> NULL) s;
SELECT id FROM cm ORDER BY v <-> (SELECT v FROM cm WHERE id = 700) LIMIT 1;
SELECT check_name, ok FROM s5vector_verify('cm_idx');
-- A migrated row deleted later is vacuumed from its list.
DELETE FROM cm WHERE id > 850;
VACUUM cm;
SELECT hot_elements, cold_rows FROM s5vector_index_stats('cm_idx');
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM cm ORDER BY v <-> '[0.5,0.5,0.5]') s;
RESET enable_seqscan;

-- Without an age column a row's age is when it entered the index.
CREATE TABLE cm2 (id int, v vector(2));
CREATE INDEX cm2_idx ON cm2 USING s5vector (v) WITH (hot_window = '1 second', lists = 4);
INSERT INTO cm2 SELECT i, ARRAY[sin(i), cos(i)]::vector FROM generate_series(1, 100) i;
SELECT hot_elements, cold_rows FROM s5vector_index_stats('cm2_idx');
SELECT pg_sleep(1.2);
SELECT s5vector_migrate('cm2_idx');
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cm2_idx');
SET enable_seqscan = off;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM cm2 ORDER BY v <-> '[0,1]') s;
RESET enable_seqscan;

-- 'infinity' never migrates; NULL index gives NULL.
CREATE INDEX cm2_inf ON cm2 USING s5vector (v) WITH (hot_window = 'infinity');
SELECT s5vector_migrate('cm2_inf');
SELECT s5vector_migrate(NULL);

-- Errors.
CREATE INDEX cm2_btree ON cm2 (id);
SELECT s5vector_migrate('cm2_btree');
SELECT s5vector_migrate('cm_idx', -1);
CREATE ROLE regress_s5v_migrator;
GRANT SELECT ON cm TO regress_s5v_migrator;
SET ROLE regress_s5v_migrator;
SELECT s5vector_migrate('cm_idx');
RESET ROLE;
REVOKE SELECT ON cm FROM regress_s5v_migrator;
DROP ROLE regress_s5v_migrator;
DROP TABLE cm;
DROP TABLE cm2;
