-- s5vector index hardening: refused column lists, planner paths that must not use the index, function
-- privileges and argument checks, index order on near-ties
\set VERBOSITY default
CREATE TABLE hard (id int, v vector(3), ts timestamptz, t2 timestamptz, w vector(3), d date, n int);
INSERT INTO hard SELECT i, ARRAY[i, 0, 0]::vector, '2026-01-01'::timestamptz + i * interval '1 day',
	'2026-01-01'::timestamptz - i * interval '1 day', ARRAY[-i, 0, 0]::vector, '2026-01-01'::date + i, i
	FROM generate_series(1, 20) i;

-- at most two key columns: the vector, then one age column
CREATE INDEX ON hard USING s5vector (v, ts, t2);
CREATE INDEX ON hard USING s5vector (v, ts, w);
CREATE INDEX ON hard USING s5vector (v, w);
CREATE INDEX ON hard USING s5vector (ts, v);
CREATE INDEX ON hard USING s5vector (v) INCLUDE (n);
CREATE INDEX ON hard USING s5vector (v, ts) INCLUDE (t2);
SELECT count(*) FROM pg_indexes WHERE tablename = 'hard';

-- with the two allowed columns, the planner hands the scan one ordering on the vector and conditions on the age
CREATE INDEX hard_idx ON hard USING s5vector (v, ts);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hard WHERE ts > '2026-01-10' ORDER BY v <-> '[0,0,0]' LIMIT 3;
SELECT id FROM hard WHERE ts > '2026-01-10' ORDER BY v <-> '[0,0,0]' LIMIT 3;
-- two orderings: the index orders by one distance only, so it is not used for both
EXPLAIN (COSTS OFF) SELECT id FROM hard ORDER BY v <-> '[0,0,0]', v <-> '[5,0,0]' LIMIT 3;
SELECT id FROM hard ORDER BY v <-> '[10,0,0]', v <-> '[20,0,0]' LIMIT 3;
RESET enable_seqscan;
DROP INDEX hard_idx;

-- s5vector_index_stats and s5vector_verify: which index, and who may look
CREATE INDEX hard_idx ON hard USING s5vector (v, ts);
CREATE TABLE hard_rls (id int, v vector(3));
INSERT INTO hard_rls SELECT i, ARRAY[i, 1, 1]::vector FROM generate_series(1, 10) i;
CREATE INDEX hard_rls_idx ON hard_rls USING s5vector (v);
ALTER TABLE hard_rls ENABLE ROW LEVEL SECURITY;
CREATE ROLE regress_s5v_nobody;
CREATE ROLE regress_s5v_reader;
CREATE ROLE regress_s5v_monitor IN ROLE pg_stat_scan_tables;
GRANT SELECT ON hard, hard_rls TO regress_s5v_reader;
CREATE POLICY few ON hard_rls TO regress_s5v_reader USING (id <= 2);
\set VERBOSITY default
SELECT hot_elements FROM s5vector_index_stats(0);
\echo :LAST_ERROR_SQLSTATE
SELECT hot_elements FROM s5vector_index_stats(123456789);
\echo :LAST_ERROR_SQLSTATE
SELECT hot_elements FROM s5vector_index_stats('hard');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM s5vector_verify(0);
\echo :LAST_ERROR_SQLSTATE
SET ROLE regress_s5v_nobody;
SELECT hot_elements FROM s5vector_index_stats('hard_idx');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM s5vector_verify('hard_idx');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_s5v_reader;
-- SELECT on the table is enough for stats; with row-level security applying to the role it is not
SELECT hot_elements FROM s5vector_index_stats('hard_idx');
SELECT count(*) FROM hard_rls;
SELECT hot_elements FROM s5vector_index_stats('hard_rls_idx');
\echo :LAST_ERROR_SQLSTATE
-- verify is not executable by PUBLIC
SELECT count(*) FROM s5vector_verify('hard_idx');
RESET ROLE;
GRANT EXECUTE ON FUNCTION s5vector_verify(regclass) TO regress_s5v_reader;
SET ROLE regress_s5v_reader;
SELECT check_name, ok FROM s5vector_verify('hard_idx');
SELECT count(*) FROM s5vector_verify('hard_rls_idx');
RESET ROLE;
-- members of pg_stat_scan_tables may inspect every s5vector index
SET ROLE regress_s5v_monitor;
SELECT hot_elements FROM s5vector_index_stats('hard_rls_idx');
SELECT count(*) FILTER (WHERE ok) AS ok, count(*) FROM s5vector_verify('hard_rls_idx');
RESET ROLE;
DROP TABLE hard_rls;
REVOKE EXECUTE ON FUNCTION s5vector_verify(regclass) FROM regress_s5v_reader;
REVOKE SELECT ON hard FROM regress_s5v_reader;
DROP ROLE regress_s5v_nobody, regress_s5v_reader, regress_s5v_monitor;

-- near-ties: the index orders by the same distance functions as the SQL operators, so reading the index in
-- order gives the operator's values in ascending order (12 dimensions: the short-vector summation order). Inner
-- product reads 250 of the 300 rows: its graph leaves a few elements that only the exact pass returns, at the end
CREATE TABLE ties (id int, v vector(12));
INSERT INTO ties SELECT i,
	(SELECT array_agg((j * 7.5 + sin(i * 13.1 + j) * 0.001)::real ORDER BY j) FROM generate_series(1, 12) j)::vector
	FROM generate_series(1, 300) i;
CREATE INDEX ties_l2 ON ties USING s5vector (v vector_l2_ops);
CREATE INDEX ties_ip ON ties USING s5vector (v vector_ip_ops);
CREATE INDEX ties_l1 ON ties USING s5vector (v vector_l1_ops);
SET enable_seqscan = off;
SET s5vector.ef_search = 400;
WITH s AS (SELECT d, row_number() OVER () AS rn FROM
	(SELECT v <-> '[0,0,0,0,0,0,0,0,0,0,0,0]' AS d FROM ties ORDER BY v <-> '[0,0,0,0,0,0,0,0,0,0,0,0]' LIMIT 300) x)
SELECT count(*) AS rows, count(DISTINCT d) AS distances,
	(SELECT count(*) FROM s a JOIN s b ON b.rn = a.rn + 1 WHERE b.d < a.d) AS out_of_order FROM s;
WITH s AS (SELECT d, row_number() OVER () AS rn FROM
	(SELECT v <#> '[1,1,1,1,1,1,1,1,1,1,1,1]' AS d FROM ties ORDER BY v <#> '[1,1,1,1,1,1,1,1,1,1,1,1]' LIMIT 250) x)
SELECT count(*) AS rows, (SELECT count(*) FROM s a JOIN s b ON b.rn = a.rn + 1 WHERE b.d < a.d) AS out_of_order FROM s;
WITH s AS (SELECT d, row_number() OVER () AS rn FROM
	(SELECT v <+> '[0,0,0,0,0,0,0,0,0,0,0,0]' AS d FROM ties ORDER BY v <+> '[0,0,0,0,0,0,0,0,0,0,0,0]' LIMIT 300) x)
SELECT count(*) AS rows, (SELECT count(*) FROM s a JOIN s b ON b.rn = a.rn + 1 WHERE b.d < a.d) AS out_of_order FROM s;
EXPLAIN (COSTS OFF) SELECT id FROM ties ORDER BY v <-> '[0,0,0,0,0,0,0,0,0,0,0,0]' LIMIT 300;
RESET s5vector.ef_search;
RESET enable_seqscan;
DROP TABLE ties;
