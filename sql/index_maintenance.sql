-- s5vector index: operator class validation, memory-bounded builds, cancellation, progress phases
SELECT opcname, amvalidate(oid) FROM pg_opclass
	WHERE opcmethod = (SELECT oid FROM pg_am WHERE amname = 's5vector') ORDER BY opcname;

-- an opclass with a wrong member fails validation
CREATE OPERATOR CLASS bad_ops FOR TYPE vector USING s5vector AS
	OPERATOR 1 <-> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 vector_norm(vector);
SELECT amvalidate(oid) FROM pg_opclass WHERE opcname = 'bad_ops';
DROP OPERATOR FAMILY bad_ops USING s5vector;

-- a build that outgrows maintenance_work_mem goes on on disk and gives the same answers
CREATE TABLE big (id int, v vector(64));
INSERT INTO big SELECT i, (SELECT array_agg(sin(i * 64 + j)) FROM generate_series(1, 64) j)::vector
	FROM generate_series(1, 3000) i;
SET maintenance_work_mem = '1MB';
CREATE INDEX big_small_mem ON big USING s5vector (v);
RESET maintenance_work_mem;
SELECT check_name, ok FROM s5vector_verify('big_small_mem');
SET enable_seqscan = off;
SET s5vector.ef_search = 100;
WITH q AS (SELECT v FROM big WHERE id = 17)
SELECT array_agg(id ORDER BY id) FROM (SELECT b.id FROM big b, q ORDER BY b.v <-> q.v LIMIT 5) s;
RESET enable_seqscan;
SET enable_indexscan = off;
WITH q AS (SELECT v FROM big WHERE id = 17)
SELECT array_agg(id ORDER BY id) FROM (SELECT b.id FROM big b, q ORDER BY b.v <-> q.v LIMIT 5) s;
RESET enable_indexscan;
DROP INDEX big_small_mem;

-- a build can be cancelled
SET statement_timeout = '20ms';
CREATE INDEX big_cancel ON big USING s5vector (v) WITH (m = 48, ef_construction = 400);
RESET statement_timeout;
SELECT count(*) FROM pg_class WHERE relname = 'big_cancel';

-- the build phases have names
SELECT amname, pg_indexam_progress_phasename(oid, 2), pg_indexam_progress_phasename(oid, 3)
	FROM pg_am WHERE amname = 's5vector';

DROP TABLE big;
