
-- Cold tier: move hot rows older than the index's hot_window to the cold tier (one batch of at most max_rows;
-- NULL = all). Returns the rows moved. The caller must own the table.
CREATE FUNCTION s5vector_migrate(index regclass, max_rows bigint DEFAULT NULL) RETURNS bigint
	AS 'MODULE_PATHNAME', 's5vector_migrate' LANGUAGE C VOLATILE;
