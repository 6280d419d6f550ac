// The checks of open_index.h.
extern "C" {
#include "postgres.h"

#include "access/relation.h"
#include "access/xlog.h"
#include "catalog/pg_am.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/rel.h"
}

#include "pg/open_index.h"

namespace s5v::pg {

void CheckOurIndex(Relation index, LOCKMODE lock) {
	if (index->rd_rel->relkind != RELKIND_INDEX || index->rd_rel->relam != get_am_oid("s5vector", false)) {
		char *name = pstrdup(RelationGetRelationName(index));
		relation_close(index, lock);
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("\"%s\" is not an s5vector index", name)));
	}
}

Relation OpenOurIndex(Oid relid, LOCKMODE lock) {
	Relation index = try_relation_open(relid, lock);
	if (index == nullptr)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("relation with OID %u does not exist", relid)));
	CheckOurIndex(index, lock);
	return index;
}

Relation OpenOwnedIndex(Oid relid, LOCKMODE lock) {
	Relation index = OpenOurIndex(relid, lock);
	if (!pg_class_ownercheck(index->rd_index->indrelid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_INDEX, RelationGetRelationName(index));
	return index;
}

void RefuseDuringRecovery(const char *what, const char *function) {
	if (RecoveryInProgress())
		ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION), errmsg("cannot %s during recovery", what),
		                errhint("Run %s on the primary.", function)));
}

int64 MaxSegmentsArg(FunctionCallInfo fcinfo, int argno) {
	if (PG_ARGISNULL(argno))
		return PG_INT64_MAX;
	int64 max_segments = (int64)PG_GETARG_INT32(argno);
	if (max_segments < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("max_segments must not be negative")));
	return max_segments;
}

} // namespace s5v::pg
