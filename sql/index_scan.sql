-- s5vector index: scans, age predicates, NULLs, inserts, deletes, VACUUM, TRUNCATE
SET enable_seqscan = off;

CREATE TABLE videos (id int PRIMARY KEY, uploaded_at timestamptz NOT NULL, embedding vector(2));
CREATE INDEX videos_idx ON videos USING s5vector (embedding vector_l2_ops, uploaded_at);

-- empty index
SELECT id FROM videos ORDER BY embedding <-> '[0,0]' LIMIT 5;
SELECT check_name, ok FROM s5vector_verify('videos_idx');

-- inserts after the build go through the graph
INSERT INTO videos SELECT i, '2026-01-01 00:00+00'::timestamptz + i * interval '1 day', ARRAY[i, i % 5]::vector
	FROM generate_series(1, 30) i;
INSERT INTO videos VALUES (100, '2026-03-01 00:00+00', NULL);
SELECT id, embedding <-> '[10,0]' AS d FROM videos ORDER BY embedding <-> '[10,0]' LIMIT 5;

-- wrong dimensions at insert and at query time
INSERT INTO videos VALUES (101, now(), '[1,2,3]');
SELECT id FROM videos ORDER BY embedding <-> '[1,2,3]' LIMIT 1;

-- a NULL query vector has no order: every indexed row comes back (like ORDER BY NULL). A literal NULL is
-- folded by the planner (no index scan, 31 rows with the NULL vector's); a NULL parameter of a generic plan
-- reaches the index, which sweeps its pages (30 indexed rows)
SELECT count(*) FROM (SELECT id FROM videos ORDER BY embedding <-> NULL LIMIT 100) s;
SET plan_cache_mode = force_generic_plan;
PREPARE null_query(vector) AS SELECT count(*) FROM (SELECT id FROM videos ORDER BY embedding <-> $1 LIMIT 100) s;
EXPLAIN (COSTS OFF) EXECUTE null_query(NULL);
EXECUTE null_query(NULL);
PREPARE null_query_aged(vector, timestamptz) AS SELECT array_agg(id ORDER BY id) FROM
	(SELECT id FROM videos WHERE uploaded_at >= $2 ORDER BY embedding <-> $1 LIMIT 100) s;
EXPLAIN (COSTS OFF) EXECUTE null_query_aged(NULL, '2026-01-25 00:00+00');
EXECUTE null_query_aged(NULL, '2026-01-25 00:00+00');
DEALLOCATE null_query;
DEALLOCATE null_query_aged;
RESET plan_cache_mode;

-- scans are counted in pg_stat_user_indexes
SELECT pg_stat_force_next_flush();
SELECT idx_scan AS scans_before FROM pg_stat_user_indexes WHERE indexrelname = 'videos_idx' \gset
SELECT id FROM videos ORDER BY embedding <-> '[3,3]' LIMIT 1;
SELECT pg_stat_force_next_flush();
SELECT idx_scan - :scans_before AS new_scans FROM pg_stat_user_indexes WHERE indexrelname = 'videos_idx';

-- every scan holds the scan interlock (a tuple lock on the index, block 0, offset 0) until it ends
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM videos ORDER BY embedding <-> '[3,3]';
FETCH 1 FROM c;
SELECT locktype, page, tuple, mode, granted FROM pg_locks
	WHERE relation = 'videos_idx'::regclass AND locktype = 'tuple' AND pid = pg_backend_pid();
-- a mover's wait does not wait for its own session's scans
SELECT s5vector_wait_for_scans('videos_idx');
CLOSE c;
SELECT count(*) AS interlocks FROM pg_locks WHERE relation = 'videos_idx'::regclass AND locktype = 'tuple';
COMMIT;
SELECT s5vector_wait_for_scans('videos_pkey');

-- age predicates are evaluated in the index
EXPLAIN (COSTS OFF) SELECT id FROM videos WHERE uploaded_at >= '2026-01-20 00:00+00' ORDER BY embedding <-> '[10,0]' LIMIT 5;
SELECT id FROM videos WHERE uploaded_at >= '2026-01-20 00:00+00' ORDER BY embedding <-> '[10,0]' LIMIT 5;
SELECT id FROM videos WHERE uploaded_at > '2026-01-20 00:00+00' ORDER BY embedding <-> '[10,0]' LIMIT 5;
SELECT id FROM videos WHERE uploaded_at < '2026-01-05 00:00+00' ORDER BY embedding <-> '[10,0]' LIMIT 5;
SELECT id FROM videos WHERE uploaded_at <= '2026-01-05 00:00+00' ORDER BY embedding <-> '[10,0]' LIMIT 5;
SELECT id FROM videos WHERE uploaded_at = '2026-01-12 00:00+00' ORDER BY embedding <-> '[10,0]' LIMIT 5;
SELECT id FROM videos WHERE uploaded_at BETWEEN '2026-01-08 00:00+00' AND '2026-01-10 00:00+00' ORDER BY embedding <-> '[0,0]' LIMIT 5;
SELECT id FROM videos WHERE uploaded_at > '2026-01-10 00:00+00' AND uploaded_at < '2026-01-05 00:00+00' ORDER BY embedding <-> '[0,0]' LIMIT 5;
SELECT id FROM videos WHERE uploaded_at > NULL ORDER BY embedding <-> '[0,0]' LIMIT 5;
-- a filter that the index cannot evaluate still gets its LIMIT (the scan widens)
SELECT count(*) FROM (SELECT id FROM videos WHERE id % 3 = 0 ORDER BY embedding <-> '[0,0]' LIMIT 10) s;
-- a time-restricted query with both filters
SELECT id FROM videos WHERE uploaded_at > '2026-01-15 00:00+00' AND id % 2 = 0 ORDER BY embedding <-> '[0,0]' LIMIT 3;

-- ef_search and iterative scans
SHOW s5vector.ef_search;
SET s5vector.ef_search = 1;
SELECT count(*) FROM (SELECT id FROM videos ORDER BY embedding <-> '[0,0]' LIMIT 20) s;
SET s5vector.iterative_scan = off;
SELECT count(*) <= 20 AS bounded FROM (SELECT id FROM videos ORDER BY embedding <-> '[0,0]' LIMIT 20) s;
RESET s5vector.iterative_scan;
RESET s5vector.ef_search;
SET s5vector.ef_search = 0;
SET s5vector.ef_search = 1001;
SET s5vector.max_scan_tuples = 0;
SET s5vector.no_such_setting = 1;

-- deletes and VACUUM
DELETE FROM videos WHERE id % 2 = 1;
VACUUM videos;
SELECT id FROM videos ORDER BY embedding <-> '[10,0]' LIMIT 5;
SELECT hot_elements, hot_deleted FROM s5vector_index_stats('videos_idx');
SELECT check_name, ok FROM s5vector_verify('videos_idx');
-- updates: the new version is indexed
UPDATE videos SET embedding = '[100,100]' WHERE id = 2;
SELECT id FROM videos ORDER BY embedding <-> '[100,100]' LIMIT 1;
VACUUM videos;
SELECT check_name, ok FROM s5vector_verify('videos_idx');

-- TRUNCATE empties the index; it works again afterwards
TRUNCATE videos;
SELECT id FROM videos ORDER BY embedding <-> '[0,0]' LIMIT 5;
INSERT INTO videos VALUES (1, now(), '[1,1]'), (2, now(), '[2,2]');
SELECT id FROM videos ORDER BY embedding <-> '[2,2]' LIMIT 5;
SELECT hot_elements FROM s5vector_index_stats('videos_idx');

-- REINDEX
REINDEX INDEX videos_idx;
SELECT id FROM videos ORDER BY embedding <-> '[2,2]' LIMIT 5;
SELECT check_name, ok FROM s5vector_verify('videos_idx');

-- date and timestamp age columns
CREATE TABLE clips (id int, day date, ts timestamp, v vector(2));
INSERT INTO clips SELECT i, '2026-01-01'::date + i, '2026-01-01'::timestamp + i * interval '1 hour', ARRAY[i, 0]::vector FROM generate_series(1, 20) i;
INSERT INTO clips VALUES (21, NULL, NULL, '[21,0]');
CREATE INDEX clips_day ON clips USING s5vector (v, day);
SELECT id FROM clips WHERE day > '2026-01-15' ORDER BY v <-> '[0,0]' LIMIT 3;
SELECT id FROM clips WHERE day IS NULL ORDER BY v <-> '[0,0]' LIMIT 3;
DROP INDEX clips_day;
CREATE INDEX clips_ts ON clips USING s5vector (v, ts);
SELECT id FROM clips WHERE ts <= '2026-01-01 03:00' ORDER BY v <-> '[100,0]' LIMIT 3;
DROP TABLE clips;

-- no age column: rows are aged from the time they entered the index
CREATE TABLE plain (v vector(2));
INSERT INTO plain VALUES ('[1,1]');
CREATE INDEX plain_idx ON plain USING s5vector (v vector_cosine_ops);
INSERT INTO plain VALUES ('[0,0]'), ('[2,1]');
SELECT v FROM plain ORDER BY v <=> '[1,1]' LIMIT 5;
SELECT check_name, ok FROM s5vector_verify('plain_idx');

-- unlogged tables
CREATE UNLOGGED TABLE ulog (v vector(2));
CREATE INDEX ON ulog USING s5vector (v);
INSERT INTO ulog VALUES ('[1,2]'), ('[3,4]');
SELECT v FROM ulog ORDER BY v <-> '[3,3]' LIMIT 1;

DROP TABLE videos, plain, ulog;

-- a scan read to the end returns every row exactly once, even those the graph does not reach
-- (inner product leaves low-norm elements without in-links)
CREATE TABLE ipt (id int, v vector(8));
INSERT INTO ipt SELECT i, (SELECT array_agg(sin(i * 8 + j) * (1 + i % 10)) FROM generate_series(1, 8) j)::vector
	FROM generate_series(1, 2000) i;
CREATE INDEX ipt_idx ON ipt USING s5vector (v vector_ip_ops);
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM ipt ORDER BY v <#> '[1,1,1,1,1,1,1,1]' LIMIT 5000) s;
SELECT check_name, ok FROM s5vector_verify('ipt_idx') WHERE NOT ok;
-- the exact pass is bounded: on an index of more than max_scan_tuples elements the scan stops where the graph
-- stops (here 2000 elements, 100 visits: far fewer rows), still each row once
SET s5vector.max_scan_tuples = 100;
SELECT count(*) < 2000 AS stopped, count(*) >= 40 AS first_pass_complete, count(*) = count(DISTINCT id) AS once
	FROM (SELECT id FROM ipt ORDER BY v <#> '[1,1,1,1,1,1,1,1]' LIMIT 5000) s;
RESET s5vector.max_scan_tuples;
-- the first rows are the true nearest ones
SELECT array_agg(id) FROM (SELECT id FROM ipt ORDER BY v <#> '[1,1,1,1,1,1,1,1]' LIMIT 5) s;
SET enable_indexscan = off;
SELECT array_agg(id) FROM (SELECT id FROM ipt ORDER BY v <#> '[1,1,1,1,1,1,1,1]' LIMIT 5) s;
RESET enable_indexscan;
DROP TABLE ipt;
