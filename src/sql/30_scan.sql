
-- Wait until every scan of the index that is running now has ended (the scan interlock a mover waits on).
CREATE FUNCTION s5vector_wait_for_scans(index regclass) RETURNS void
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION s5vector_wait_for_scans(regclass) FROM PUBLIC;
