-- The C++/PostgreSQL boundary (src/pg/guard.cpp), driven through s5vector_guard_selftest (src/pg/guard_selftest.cpp):
-- every core status maps to its SQLSTATE, C++ exceptions become errors, a PostgreSQL error raised under PgCall is
-- re-thrown as it was (SQLSTATE, message, detail) even after the context it was raised in is gone, a saved error
-- never leaks into a later statement, C++ destructors run before the error is raised, and a cancel is reported
-- as PostgreSQL reports it.
CREATE FUNCTION s5vector_guard_selftest(text) RETURNS text AS '$libdir/s5vector' LANGUAGE C STRICT;
CREATE FUNCTION guard_case(c text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	msg text;
	det text;
BEGIN
	RETURN 'returned: ' || s5vector_guard_selftest(c);
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
	RETURN SQLSTATE || ': ' || msg || coalesce(nullif(' (' || det || ')', ' ()'), '');
END $$;

SELECT c, guard_case(c) FROM unnest(ARRAY[
	'status_invalid_input', 'status_limit', 'status_corrupt', 'status_unavailable', 'status_not_found',
	'status_oom', 'status_internal', 'status_external_without_saved_error',
	'throw_bad_alloc', 'throw_runtime_error', 'throw_int',
	'pg_error_rethrown', 'pg_error_dying_context', 'pg_error_discarded_then_corrupt']) c;

-- A swallowed PgCall error stays out of the next statement: the External status that follows has nothing saved.
SELECT guard_case('pg_error_swallowed');
SELECT guard_case('status_external_without_saved_error');

-- The C++ object of the lambda is destroyed before the error is raised (the count goes up by one).
SELECT guard_case('destructor_runs');
SELECT guard_case('destructor_before_raise');
SELECT guard_case('destructor_runs');

-- A cancel seen by the core is reported by PostgreSQL's own path.
SELECT guard_case('cancel');
SELECT guard_case('no_such_case');

DROP FUNCTION guard_case(text);
DROP FUNCTION s5vector_guard_selftest(text);

-- A page store refuses every call after its first PostgreSQL error (here: a TID past the end of the index), returns
-- that error again and reads no buffer.
CREATE FUNCTION s5vector_page_store_selftest(regclass) RETURNS text AS '$libdir/s5vector' LANGUAGE C STRICT;
CREATE TABLE guard_items (id int, v vector(3));
INSERT INTO guard_items SELECT i, ARRAY[i, i % 7, i % 3]::float4[]::vector FROM generate_series(1, 50) i;
CREATE INDEX guard_items_idx ON guard_items USING s5vector (v vector_l2_ops);
SELECT s5vector_page_store_selftest('guard_items_idx');
DROP TABLE guard_items;
DROP FUNCTION s5vector_page_store_selftest(regclass);
