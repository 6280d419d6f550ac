-- s5vector_compact's arguments (docs/s5.md "Compaction"); the compaction itself needs an S5 node:
-- test/tap/015_compact.pl runs it against a real s5vector-node.
\set VERBOSITY terse
CREATE TABLE cp (id int, v vector(3));
INSERT INTO cp SELECT i, ARRAY[i, i % 7, 1]::vector FROM generate_series(1, 50) i;
CREATE INDEX cp_idx ON cp USING s5vector (v) WITH (hot_window = '0', lists = 2);
CREATE INDEX cp_btree ON cp (id);
-- NULL index: NULL; a negative max_segments: 22023.
SELECT s5vector_compact(NULL);
SELECT s5vector_compact('cp_idx', -1);
-- Not an s5vector index, not an index at all: 42809.
SELECT s5vector_compact('cp_btree');
SELECT s5vector_compact('cp');
-- The same errors' SQLSTATEs.
\set VERBOSITY sqlstate
SELECT s5vector_compact('cp_idx', -1);
SELECT s5vector_compact('cp_btree');
SELECT s5vector_compact('cp');
\set VERBOSITY terse
-- Without s5vector.s5_url nothing is remote: 0 rows rewritten, with or without a bound.
SELECT s5vector_compact('cp_idx');
SELECT s5vector_compact('cp_idx', 3);
SELECT s5vector_compact('cp_idx', NULL);
-- Only the table's owner compacts (42501).
CREATE ROLE s5v_cp_user;
GRANT SELECT ON cp TO s5v_cp_user;
SET ROLE s5v_cp_user;
SELECT s5vector_compact('cp_idx');
\set VERBOSITY sqlstate
SELECT s5vector_compact('cp_idx');
\set VERBOSITY terse
RESET ROLE;
DROP TABLE cp;
DROP ROLE s5v_cp_user;
