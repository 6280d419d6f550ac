-- Cold tier: CREATE INDEX by age (rows older than now() - hot_window go cold, the rest to the graph).
SET client_min_messages = warning;
CREATE TABLE cb (id int PRIMARY KEY, v vector(3), ts timestamptz);
-- Ages from 30 minutes to 3000 hours and 30 minutes ago (no row near a whole-hour window boundary).
INSERT INTO cb SELECT i, ARRAY[sin(i), cos(i * 1.3), sin(i * 0.7)]::vector,
	now() - (i || ' hours')::interval - interval '30 minutes' FROM generate_series(0, 2999) i;

-- 10 days: 240 rows hot (0 .. 239 hours old), 2760 cold, in 20 trained lists.
CREATE INDEX cb_idx ON cb USING s5vector (v, ts) WITH (hot_window = '10 days', lists = 20);
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cb_idx');
SELECT count(*) FILTER (WHERE ts >= now() - interval '10 days') AS hot,
	count(*) FILTER (WHERE ts < now() - interval '10 days') AS cold FROM cb;
SELECT check_name, ok FROM s5vector_verify('cb_idx');
DROP INDEX cb_idx;

-- 'infinity': pure HNSW, as before the cold tier.
CREATE INDEX cb_idx ON cb USING s5vector (v, ts) WITH (hot_window = 'infinity');
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cb_idx');
DROP INDEX cb_idx;

-- '0': pure IVF, no graph; the default lists (0) chooses from the cold rows: 3000 < 10000 rows, so they wait in
-- the staging list, untrained.
CREATE INDEX cb_idx ON cb USING s5vector (v, ts) WITH (hot_window = '0');
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cb_idx');
SELECT check_name, ok FROM s5vector_verify('cb_idx');
DROP INDEX cb_idx;

-- Too few cold rows for the lists asked for (fewer than 4 a list, or fewer than 64): staging.
CREATE INDEX cb_idx ON cb USING s5vector (v, ts) WITH (hot_window = '2990 hours', lists = 10);
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cb_idx');
DROP INDEX cb_idx;
CREATE INDEX cb_idx ON cb USING s5vector (v, ts) WITH (hot_window = '0', lists = 1000);
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cb_idx');
DROP INDEX cb_idx;

-- Without an age column a row's age is when it entered the index: everything hot, unless hot_window = '0'.
CREATE INDEX cb_noage ON cb USING s5vector (v) WITH (hot_window = '1 hour');
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cb_noage');
DROP INDEX cb_noage;
CREATE INDEX cb_noage ON cb USING s5vector (v) WITH (hot_window = '0', lists = 30);
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cb_noage');
SELECT check_name, ok FROM s5vector_verify('cb_noage');
DROP INDEX cb_noage;

-- lists = 0 on enough rows: n / 1000 lists (12 for 12000 cold rows).
CREATE TABLE cb_big (id int, v vector(2));
INSERT INTO cb_big SELECT i, ARRAY[sin(i), cos(i)]::vector FROM generate_series(1, 12000) i;
CREATE INDEX cb_big_idx ON cb_big USING s5vector (v) WITH (hot_window = '0');
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cb_big_idx');
DROP TABLE cb_big;

-- A NULL age is never old: hot, unless the window is 0.
CREATE TABLE cb_null (id int, v vector(3), ts timestamptz);
INSERT INTO cb_null SELECT i, ARRAY[i, 1, 1]::vector, CASE WHEN i % 2 = 0 THEN NULL ELSE now() - interval '1 year' END
	FROM generate_series(1, 100) i;
CREATE INDEX cb_null_idx ON cb_null USING s5vector (v, ts) WITH (hot_window = '1 day', lists = 5);
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cb_null_idx');
DROP INDEX cb_null_idx;
CREATE INDEX cb_null_idx ON cb_null USING s5vector (v, ts) WITH (hot_window = '0', lists = 5);
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cb_null_idx');
DROP TABLE cb_null;

-- Timestamps without time zone and dates are compared in local time.
CREATE TABLE cb_local (id int, v vector(2), t timestamp, d date);
INSERT INTO cb_local SELECT i, ARRAY[i, 0]::vector, localtimestamp - (i || ' days')::interval - interval '1 hour',
	current_date - i FROM generate_series(0, 99) i;
CREATE INDEX cb_local_t ON cb_local USING s5vector (v, t) WITH (hot_window = '30 days', lists = 4);
SELECT hot_elements, cold_rows FROM s5vector_index_stats('cb_local_t');
CREATE INDEX cb_local_d ON cb_local USING s5vector (v, d) WITH (hot_window = '30 days', lists = 4);
SELECT hot_elements, cold_rows FROM s5vector_index_stats('cb_local_d');
DROP TABLE cb_local;

-- Every metric builds its lists.
CREATE TABLE cb_m (id int, v vector(4));
INSERT INTO cb_m SELECT i, ARRAY[sin(i), cos(i), sin(2 * i) + 2, cos(3 * i)]::vector FROM generate_series(1, 800) i;
CREATE INDEX cb_m_cos ON cb_m USING s5vector (v vector_cosine_ops) WITH (hot_window = '0', lists = 8);
CREATE INDEX cb_m_ip ON cb_m USING s5vector (v vector_ip_ops) WITH (hot_window = '0', lists = 8);
CREATE INDEX cb_m_l1 ON cb_m USING s5vector (v vector_l1_ops) WITH (hot_window = '0', lists = 8);
SELECT c.relname, s.hot_elements, s.cold_rows, s.cold_lists FROM pg_class c, s5vector_index_stats(c.oid) s
	WHERE c.relname LIKE 'cb_m_%' ORDER BY 1;
DROP TABLE cb_m;

-- Bad options.
CREATE INDEX cb_bad ON cb USING s5vector (v, ts) WITH (lists = -1);
CREATE INDEX cb_bad ON cb USING s5vector (v, ts) WITH (lists = 40000);
CREATE INDEX cb_bad ON cb USING s5vector (v, ts) WITH (hot_window = 'soon');
CREATE INDEX cb_bad ON cb USING s5vector (v, ts) WITH (hot_window = '-1 day');
CREATE INDEX cb_bad ON cb USING s5vector (v, ts) WITH (hot_window = '1 day ago');
DROP TABLE cb;
