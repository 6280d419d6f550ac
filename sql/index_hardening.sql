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
