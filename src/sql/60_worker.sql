
-- The background worker (docs/worker.md): one row per database worker, what it is doing and its last rounds.
-- No rows (and a NOTICE) when s5vector is not in shared_preload_libraries. It names other databases' indexes:
-- for pg_read_all_stats (superusers are members), as pg_stat_activity's query text is.
CREATE FUNCTION s5vector_worker_status(
	OUT database text, OUT pid integer, OUT state text, OUT current_index text, OUT current_step text,
	OUT rounds bigint, OUT rows_moved bigint, OUT last_round_start timestamptz, OUT last_round_end timestamptz,
	OUT last_error text, OUT last_error_time timestamptz)
	RETURNS SETOF record AS 'MODULE_PATHNAME', 's5vector_worker_status' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION s5vector_worker_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION s5vector_worker_status() TO pg_read_all_stats;
