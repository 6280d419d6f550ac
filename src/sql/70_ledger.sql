-- The blob ledger (docs/s5.md "Dropped, rebuilt and truncated indexes"): the blobs on S5 of index storage that a
-- command threw away (DROP, REINDEX, TRUNCATE, CLUSTER, VACUUM FULL, table rewrites), copied in the command's own
-- transaction, deleted from S5 by s5vector_gc_dropped() (and the worker) once s5vector.gc_grace has passed.
-- Not a pg_dump configuration table on purpose: a restored dump must never delete blobs the original still uses.
CREATE TABLE s5vector_dropped_blobs (
	cid text NOT NULL,               -- the encrypted blob's CID ("blobb...", hash and size; no key)
	queued_at timestamptz NOT NULL,  -- when it lost its last reference (the command; a GC queue entry: its own time)
	index_name text NOT NULL,        -- the index, schema-qualified, when its storage went
	reason text NOT NULL,            -- the command: DROP INDEX, DROP TABLE, REINDEX, TRUNCATE TABLE, CLUSTER, ...
	state text NOT NULL,             -- referenced (a part), unreferenced or upload pending (GC queue entries)
	relfilenode oid NOT NULL         -- the storage that held it: not collected while a relation still has it
);
CREATE INDEX s5vector_dropped_blobs_queued_at ON s5vector_dropped_blobs (queued_at);
-- Written by the extension's code only (as the ledger's owner); superusers read it.
REVOKE ALL ON s5vector_dropped_blobs FROM PUBLIC;

-- Delete the ledger's blobs older than s5vector.gc_grace from S5; returns the blobs deleted. Superuser or the owner
-- of the database.
CREATE FUNCTION s5vector_gc_dropped() RETURNS bigint
	AS 'MODULE_PATHNAME', 's5vector_gc_dropped' LANGUAGE C VOLATILE;

-- Loads the library at the start of every DDL command, so that a session without shared_preload_libraries tracks
-- the indexes the command drops (the library's object access hook).
CREATE FUNCTION s5vector_track_blobs() RETURNS event_trigger
	AS 'MODULE_PATHNAME', 's5vector_track_blobs' LANGUAGE C;
CREATE EVENT TRIGGER s5vector_track_blobs ON ddl_command_start EXECUTE FUNCTION s5vector_track_blobs();
