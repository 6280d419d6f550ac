
-- Cold tier: move hot rows older than the index's hot_window to the cold tier (one batch of at most max_rows;
-- NULL = all). Returns the rows moved. The caller must own the table.
CREATE FUNCTION s5vector_migrate(index regclass, max_rows bigint DEFAULT NULL) RETURNS bigint
	AS 'MODULE_PATHNAME', 's5vector_migrate' LANGUAGE C VOLATILE;

-- Cold tier: one rebalance step (split lists far past the mean, refresh drifted centroids, move the rows that are
-- no longer in their nearest list). Returns the lists changed. The caller must own the table.
CREATE FUNCTION s5vector_rebalance(index regclass) RETURNS integer
	AS 'MODULE_PATHNAME', 's5vector_rebalance' LANGUAGE C VOLATILE STRICT;

-- Cold tier: one row per list (the staging list has list NULL), from the centroid pages.
CREATE FUNCTION s5vector_list_stats(index regclass,
	OUT list integer, OUT rows bigint, OUT min_age timestamptz, OUT max_age timestamptz, OUT local_bytes bigint)
	RETURNS SETOF record AS 'MODULE_PATHNAME', 's5vector_list_stats' LANGUAGE C STABLE STRICT;
