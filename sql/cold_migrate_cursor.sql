-- The migration sweep resumes where the last one stopped (worker.migration_cursor in the metapage) and wraps
-- around; a batch of max_rows reads at most max_rows hot pages; every step sets worker.last_migration, shown by
-- s5vector_index_stats.last_migration (its last column).
SET client_min_messages = warning;
CREATE EXTENSION pageinspect;
-- The cursor, read from the metapage (block 0: page header 24 bytes, the metapage's worker state at 96, the
-- cursor 28 bytes into it; little endian; 4294967295 = InvalidBlockNumber, start).
CREATE FUNCTION cursor_of(idx text) RETURNS bigint LANGUAGE sql AS $$
	SELECT get_byte(p, 148)::bigint + get_byte(p, 149) * 256 + get_byte(p, 150) * 65536
	       + get_byte(p, 151)::bigint * 16777216 FROM get_raw_page(idx, 0) p
$$;
CREATE TABLE cc (id int, v vector(64), ts timestamptz);
INSERT INTO cc SELECT i, (SELECT array_agg(sin(i * d)) FROM generate_series(1, 64) d)::vector,
	now() - (i || ' days')::interval FROM generate_series(1, 600) i;
CREATE INDEX cc_idx ON cc USING s5vector (v, ts) WITH (hot_window = 'infinity', lists = 8);
SELECT hot_elements, cold_rows, last_migration IS NULL AS never_migrated FROM s5vector_index_stats('cc_idx');
SELECT cursor_of('cc_idx') AS cursor, pg_relation_size('cc_idx') / 8192 AS blocks;
-- Everything older than 300 days may go: small batches, each starting where the last stopped.
ALTER INDEX cc_idx SET (hot_window = '300 days');
SELECT s5vector_migrate('cc_idx', 40) AS moved;
SELECT cursor_of('cc_idx') AS c1 \gset
SELECT :c1 > 1 AND :c1 < pg_relation_size('cc_idx') / 8192 AS cursor_inside;
SELECT last_migration IS NOT NULL AND last_migration <= now() AS stamped FROM s5vector_index_stats('cc_idx');
SELECT s5vector_migrate('cc_idx', 40) AS moved;
SELECT cursor_of('cc_idx') AS c2 \gset
SELECT :c2 > :c1 AS cursor_advanced;
-- The rest in one call (NULL = all: one full circle), then nothing is left.
SELECT s5vector_migrate('cc_idx') AS moved;
-- (cold_lists: the trained 8 lists, and the lists the automatic rebalance split off after a batch)
SELECT hot_elements, cold_rows, cold_lists FROM s5vector_index_stats('cc_idx');
SELECT s5vector_migrate('cc_idx') AS moved;
-- With nothing to move, a batch of 3 reads 3 hot pages and moves the cursor on by those; repeated, it wraps
-- around to the start and goes on.
SELECT cursor_of('cc_idx') AS c3 \gset
SELECT s5vector_migrate('cc_idx', 3) AS moved;
SELECT cursor_of('cc_idx') AS c4 \gset
SELECT CASE WHEN :c3 = 4294967295 THEN :c4 = 4 ELSE :c4 = :c3 + 3 OR :c4 = 4294967295 END AS three_pages_on;
DO $$
DECLARE
	first bigint := cursor_of('cc_idx');
	prev bigint := first;
	now_c bigint;
	wrapped bool := false;
BEGIN
	FOR i IN 1 .. 100 LOOP
		PERFORM s5vector_migrate('cc_idx', 3);
		now_c := cursor_of('cc_idx');
		IF now_c < prev OR now_c = 4294967295 THEN
			wrapped := true;
			EXIT;
		END IF;
		prev := now_c;
	END LOOP;
	RAISE WARNING 'wrapped: %', wrapped;
END $$;
-- New old rows on any page are found by the sweep wherever the cursor is.
ALTER INDEX cc_idx SET (hot_window = '100 days');
SELECT s5vector_migrate('cc_idx', 50) + s5vector_migrate('cc_idx', 50) + s5vector_migrate('cc_idx') AS moved;
SELECT hot_elements, cold_rows FROM s5vector_index_stats('cc_idx');
SET enable_seqscan = off;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM cc ORDER BY v <-> (SELECT v FROM cc WHERE id = 5)) s;
RESET enable_seqscan;
SELECT check_name, ok FROM s5vector_verify('cc_idx') WHERE ok IS NOT TRUE;
DROP TABLE cc;
DROP FUNCTION cursor_of(text);
DROP EXTENSION pageinspect;
