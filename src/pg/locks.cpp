// The scan interlock (see locks.h) and s5vector_wait_for_scans(regclass).
extern "C" {
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_am.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/resowner.h"
#include "utils/rel.h"
}

#include "pg/open_index.h"
#include "pg/locks.h"

extern "C" {
PG_FUNCTION_INFO_V1(s5vector_wait_for_scans);
PGDLLEXPORT Datum s5vector_wait_for_scans(PG_FUNCTION_ARGS);
}

namespace s5v::pg {

void ScanInterlockTag(Relation index, LOCKTAG *tag) {
	SET_LOCKTAG_TUPLE(*tag, index->rd_lockInfo.lockRelId.dbId, index->rd_lockInfo.lockRelId.relId, 0,
	                  InvalidOffsetNumber);
}

namespace {
// The owner of scan interlocks: the top transaction's (see locks.h).
ResourceOwner InterlockOwner() {
	return TopTransactionResourceOwner != nullptr ? TopTransactionResourceOwner : CurrentResourceOwner;
}
} // namespace

void LockScanInterlock(Relation index) {
	LOCKTAG tag;
	ScanInterlockTag(index, &tag);
	ResourceOwner saved = CurrentResourceOwner;
	CurrentResourceOwner = InterlockOwner();
	PG_TRY();
	{ (void)LockAcquire(&tag, ShareLock, false, false); }
	PG_FINALLY();
	{ CurrentResourceOwner = saved; }
	PG_END_TRY();
}

void UnlockScanInterlock(Relation index) {
	LOCKTAG tag;
	ScanInterlockTag(index, &tag);
	ResourceOwner saved = CurrentResourceOwner;
	CurrentResourceOwner = InterlockOwner();
	(void)LockRelease(&tag, ShareLock, false);
	CurrentResourceOwner = saved;
}

namespace {
void HotRemovalTag(Relation index, LOCKTAG *tag) {
	SET_LOCKTAG_TUPLE(*tag, index->rd_lockInfo.lockRelId.dbId, index->rd_lockInfo.lockRelId.relId, 0, 3);
}
} // namespace

void LockHotRemoval(Relation index) {
	LOCKTAG tag;
	HotRemovalTag(index, &tag);
	(void)LockAcquire(&tag, ExclusiveLock, false, false);
}

void UnlockHotRemoval(Relation index) {
	LOCKTAG tag;
	HotRemovalTag(index, &tag);
	(void)LockRelease(&tag, ExclusiveLock, false);
}

void WaitForScans(Relation index) {
	LOCKTAG tag;
	ScanInterlockTag(index, &tag);
	WaitForLockers(tag, ExclusiveLock, false);
}

} // namespace s5v::pg

// Wait for the scans of an index that are running now (what a mover does between its two steps); for
// operators and tests.
Datum s5vector_wait_for_scans(PG_FUNCTION_ARGS) {
	Oid relid = PG_GETARG_OID(0);
	Relation index = s5v::pg::OpenOurIndex(relid, AccessShareLock);
	s5v::pg::WaitForScans(index);
	relation_close(index, AccessShareLock);
	PG_RETURN_VOID();
}
