-- Offload (docs/s5.md): sealed cold parts go to S5 as encrypted segments; scans fetch them through a local cache.
-- s5vector_offload: one batch of at most max_segments segments (NULL = every sealable part); returns the rows
-- offloaded. The caller must own the table; s5vector.s5_url must be set.
CREATE FUNCTION s5vector_offload(index regclass, max_segments integer DEFAULT NULL) RETURNS bigint
	AS 'MODULE_PATHNAME', 's5vector_offload' LANGUAGE C VOLATILE;

-- Fetch every remote segment of the index into the local cache; returns the segments now cached.
CREATE FUNCTION s5vector_prewarm(index regclass) RETURNS bigint
	AS 'MODULE_PATHNAME', 's5vector_prewarm' LANGUAGE C STRICT VOLATILE;

-- Empty the local cache of every index; returns the files removed (superuser).
CREATE FUNCTION s5vector_cache_reset() RETURNS bigint
	AS 'MODULE_PATHNAME', 's5vector_cache_reset' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION s5vector_cache_reset() FROM PUBLIC;

-- Delete the index's queued blobs older than s5vector.gc_grace from S5 (orphans of crashed or refused uploads,
-- unreferenced blobs); returns the blobs deleted. The caller must own the table.
CREATE FUNCTION s5vector_gc(index regclass) RETURNS bigint
	AS 'MODULE_PATHNAME', 's5vector_gc' LANGUAGE C STRICT VOLATILE;

-- Rewrite remote segments worth it (docs/s5.md "Compaction": dead share >= 20 %, or small parts merged), at most
-- max_segments rewrites (NULL = all); returns the live rows rewritten. The old blobs go to the GC queue. The caller
-- must own the table; 0 without s5vector.s5_url or with the index's offload option off.
CREATE FUNCTION s5vector_compact(index regclass, max_segments integer DEFAULT NULL) RETURNS bigint
	AS 'MODULE_PATHNAME', 's5vector_compact' LANGUAGE C VOLATILE;
