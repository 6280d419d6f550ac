
-- ---------------------------------------------------------------------------------------------------------------
-- The s5vector index access method (hot tier: HNSW in pages)
-- ---------------------------------------------------------------------------------------------------------------

CREATE FUNCTION s5vectorhandler(internal) RETURNS index_am_handler
	AS 'MODULE_PATHNAME' LANGUAGE C;

CREATE ACCESS METHOD s5vector TYPE INDEX HANDLER s5vectorhandler;

COMMENT ON ACCESS METHOD s5vector IS 's5vector index access method (hot HNSW tier, cold IVF tier on S5)';

CREATE OPERATOR CLASS vector_l2_ops
	DEFAULT FOR TYPE vector USING s5vector AS
	OPERATOR 1 <-> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 vector_l2_squared_distance(vector, vector);

CREATE OPERATOR CLASS vector_ip_ops
	FOR TYPE vector USING s5vector AS
	OPERATOR 1 <#> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 vector_negative_inner_product(vector, vector);

CREATE OPERATOR CLASS vector_cosine_ops
	FOR TYPE vector USING s5vector AS
	OPERATOR 1 <=> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 cosine_distance(vector, vector);

CREATE OPERATOR CLASS vector_l1_ops
	FOR TYPE vector USING s5vector AS
	OPERATOR 1 <+> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 l1_distance(vector, vector);

-- The optional second key column: the row's age. Comparisons on it are evaluated inside the index.
CREATE OPERATOR CLASS timestamptz_ops
	DEFAULT FOR TYPE timestamptz USING s5vector AS
	OPERATOR 1 < (timestamptz, timestamptz),
	OPERATOR 2 <= (timestamptz, timestamptz),
	OPERATOR 3 = (timestamptz, timestamptz),
	OPERATOR 4 >= (timestamptz, timestamptz),
	OPERATOR 5 > (timestamptz, timestamptz);

CREATE OPERATOR CLASS timestamp_ops
	DEFAULT FOR TYPE timestamp USING s5vector AS
	OPERATOR 1 < (timestamp, timestamp),
	OPERATOR 2 <= (timestamp, timestamp),
	OPERATOR 3 = (timestamp, timestamp),
	OPERATOR 4 >= (timestamp, timestamp),
	OPERATOR 5 > (timestamp, timestamp);

CREATE OPERATOR CLASS date_ops
	DEFAULT FOR TYPE date USING s5vector AS
	OPERATOR 1 < (date, date),
	OPERATOR 2 <= (date, date),
	OPERATOR 3 = (date, date),
	OPERATOR 4 >= (date, date),
	OPERATOR 5 > (date, date);

-- Operators' functions for the system.
CREATE FUNCTION s5vector_index_stats(index regclass,
	OUT dimensions integer, OUT metric text, OUT m integer, OUT ef_construction integer,
	OUT hot_window text, OUT hot_elements bigint, OUT hot_deleted bigint, OUT max_level integer,
	OUT pages bigint, OUT local_bytes bigint,
	OUT cold_rows bigint, OUT cold_lists integer,
	OUT last_migration timestamptz,
	OUT cold_remote_rows bigint, OUT segments bigint, OUT remote_bytes bigint, OUT cache_hits bigint,
	OUT cache_misses bigint, OUT gc_pending bigint, OUT last_offload timestamptz, OUT last_gc timestamptz,
	OUT worker text, OUT last_error text)
	RETURNS record AS 'MODULE_PATHNAME' LANGUAGE C STRICT;

CREATE FUNCTION s5vector_verify(index regclass)
	RETURNS TABLE(check_name text, ok boolean, detail text)
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT;

-- Both check inside that the caller is a member of pg_stat_scan_tables or holds SELECT on the table without
-- row-level security applying (see docs/index.md). verify reads the whole index and table: operators only.
REVOKE ALL ON FUNCTION s5vector_verify(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION s5vector_verify(regclass) TO pg_stat_scan_tables;
