// The blob ledger (docs/s5.md "Dropped, rebuilt and truncated indexes"). An index's part pages and GC queue are the
// only record of its blobs on S5; commands that throw those pages away would leave the blobs pinned forever. So,
// before the pages go and in the same transaction (an aborted command leaves nothing, a committed one loses nothing),
// every blob the index references or queues is copied into s5vector_dropped_blobs:
//   - a dropped index (DROP INDEX [CONCURRENTLY], DROP TABLE / SCHEMA / OWNED / EXTENSION ... CASCADE, the old index
//     of REINDEX CONCURRENTLY, ALTER TABLE dropping it): the object access hook, OAT_DROP. It needs the library loaded
//     in the backend: shared_preload_libraries, or the extension's event trigger on ddl_command_start, whose
//     function loads it before the command runs;
//   - a rebuilt index (REINDEX, TRUNCATE, CLUSTER, VACUUM FULL, ALTER TABLE rewrites): ambuild, which PostgreSQL
//     calls after giving the index new storage; the old storage stays on disk until commit and is read here. No hook
//     needed (ambuild is ours).
// Each entry carries the relfilenode of the storage that referenced it; collection skips an entry while a relation
// still has that storage (DROP INDEX CONCURRENTLY copies at its start and commits in between; ALTER TABLE may hand
// an index's storage to its replacement). A TRUNCATE that truncates in place (a table created or truncated in the
// same subtransaction) is caught by the same hook (OAT_TRUNCATE).
extern "C" {
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/dependency.h"
#include "catalog/index.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "catalog/storage.h"
#include "commands/defrem.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/smgr.h"
#include "tcop/cmdtag.h"
#include "tcop/pquery.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

#include "pg/blob_ledger.h"
#include "pg/build_journal.h"
#include "pg/cold_pages.h"
#include "pg/cold_store.h"
#include "pg/guard.h"
#include "pg/gucs.h"
#include "pg/offload.h"
#include "pg/open_index.h"
#include "pg/page_store.h"
#include "pg/s5_glue.h"

#include "core/s5/cid.h"

#include <cstring>
#include <string>

extern "C" {
PG_FUNCTION_INFO_V1(s5vector_gc_dropped);
PGDLLEXPORT Datum s5vector_gc_dropped(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(s5vector_track_blobs);
PGDLLEXPORT Datum s5vector_track_blobs(PG_FUNCTION_ARGS);
}

namespace s5v::pg {
namespace {

constexpr const char *kLedgerName = "s5vector_dropped_blobs";
constexpr int kCidTextMax = 128;
constexpr int kFetchBatch = 64;

object_access_hook_type prev_object_access_hook = nullptr;

// The schema of an extension (PostgreSQL 15 has no get_extension_schema).
Oid ExtensionSchema(Oid ext) {
	Relation rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(ext));
	SysScanDesc scan = systable_beginscan(rel, ExtensionOidIndexId, true, nullptr, 1, &key);
	HeapTuple tup = systable_getnext(scan);
	Oid nsp = HeapTupleIsValid(tup) ? ((Form_pg_extension)GETSTRUCT(tup))->extnamespace : InvalidOid;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return nsp;
}

// The ledger, or InvalidOid when the extension or the ledger is gone (dropped earlier in this very command).
Oid LedgerRelid() {
	Oid ext = get_extension_oid("s5vector", true);
	if (!OidIsValid(ext))
		return InvalidOid;
	Oid nsp = ExtensionSchema(ext);
	return OidIsValid(nsp) ? get_relname_relid(kLedgerName, nsp) : InvalidOid;
}

char *QualifiedName(Oid relid) {
	char *nsp = get_namespace_name(get_rel_namespace(relid));
	char *rel = get_rel_name(relid);
	return pstrdup(quote_qualified_identifier(nsp ? nsp : "?", rel ? rel : "?"));
}

// The tag of the statement being run ("DROP INDEX", "REINDEX", "TRUNCATE TABLE"...), else `fallback`.
const char *ReasonTag(const char *fallback) {
	if (ActivePortal != nullptr && ActivePortal->commandTag != CMDTAG_UNKNOWN)
		return GetCommandTagName(ActivePortal->commandTag);
	return fallback;
}

// The ledger is written and read as its owner (no role but its owner has rights on it), in a security-restricted
// context; every name and operator in the statements is schema-qualified, so the caller's search_path is not used.
struct AsOwner {
	Oid saved_user;
	int saved_sec;
};
void BecomeLedgerOwner(Oid ledger, AsOwner *s) {
	GetUserIdAndSecContext(&s->saved_user, &s->saved_sec);
	HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(ledger));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", ledger);
	Oid owner = ((Form_pg_class)GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	SetUserIdAndSecContext(owner, s->saved_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
}
void RestoreUser(const AsOwner *s) {
	SetUserIdAndSecContext(s->saved_user, s->saved_sec);
}

const char *StateName(uint32 kind) {
	switch (kind) {
	case S5V_GC_PENDING:
		return "upload pending";
	case S5V_GC_UNREFERENCED:
		return "unreferenced";
	default:
		return "referenced";
	}
}

// Run fn(arg), a read of the index's pages, in an internal subtransaction. An error of the index (corruption, a
// format this build does not read, ...) is caught (the subtransaction rolled back, buffers and locks released):
// false, with the message in *msg. A cancel, a shutdown or a lack of resources is raised again once the
// subtransaction is rolled back, so that a caller's own subtransaction (a PL/pgSQL exception block around the DROP)
// is the current one when it catches it.
bool ReadGuarded(void (*fn)(void *), void *arg, char **msg) {
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;
	BeginInternalSubTransaction(nullptr);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		ErrorData *ed = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		int category = ERRCODE_TO_CATEGORY(ed->sqlerrcode);
		if (category == ERRCODE_OPERATOR_INTERVENTION || category == ERRCODE_INSUFFICIENT_RESOURCES)
			ReThrowError(ed);
		*msg = pstrdup(ed->message);
		FreeErrorData(ed);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

// What one guarded read fills in: the metapage and cold tier, one list's parts, or one GC queue page.
struct ReadUnit {
	Relation index;
	S5vMetaPageData meta;
	ColdTierInfo tier;
	uint32 list;
	BlockNumber blk;
	BlockNumber nblocks;
	BlockNumber walked;
	BlockNumber next;
	RemoteBlob *blobs;
	int n;
};

void ReadHeader(void *arg) {
	ReadUnit *u = (ReadUnit *)arg;
	ReadMetaPage(u->index, &u->meta);
	ReadColdTier(u->index, u->meta, u->meta.dimensions, &u->tier);
	u->nblocks = RelationGetNumberOfBlocks(u->index);
}

void ReadList(void *arg) {
	ReadUnit *u = (ReadUnit *)arg;
	u->n = ReadListPartBlobs(u->index, u->meta.dimensions, u->tier, u->list, &u->blobs);
}

void ReadQueuePage(void *arg) {
	ReadUnit *u = (ReadUnit *)arg;
	CheckChainStep(u->index, u->blk, u->nblocks, &u->walked, "collection queue leaves the index or loops");
	u->n = ReadGcQueuePage(u->index, u->blk, u->blobs, &u->next);
}

// The ledger's writer for one index's storage (inside an SPI connection, as the ledger's owner).
struct LedgerWriter {
	Oid ledger;
	SPIPlanPtr insert;
	const char *index_name;
	const char *reason;
	Oid relfilenode;
	TimestampTz now;
	int64 rows;
};

void WriteBlobs(LedgerWriter *w, const RemoteBlob *blobs, int n) {
	for (int i = 0; i < n; i++) {
		char cid[kCidTextMax];
		cid[0] = '\0';
		Guarded([&]() -> Status {
			s5::BlobId id;
			memcpy(id.hash.data(), blobs[i].hash, 32);
			id.size = blobs[i].size;
			std::string text = s5::BlobCidText(id);
			if (text.size() >= sizeof(cid))
				return Status::Internal("blob CID text longer than expected");
			memcpy(cid, text.c_str(), text.size() + 1);
			return Status::Ok();
		});
		Datum values[6];
		values[0] = CStringGetTextDatum(cid);
		values[1] = TimestampTzGetDatum(blobs[i].kind == 0 || blobs[i].queued == 0 ? w->now : blobs[i].queued);
		values[2] = CStringGetTextDatum(w->index_name);
		values[3] = CStringGetTextDatum(w->reason);
		values[4] = CStringGetTextDatum(StateName(blobs[i].kind));
		values[5] = ObjectIdGetDatum(w->relfilenode);
		int rc = SPI_execute_plan(w->insert, values, nullptr, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "s5vector: could not write to %s: %s", kLedgerName, SPI_result_code_string(rc));
		w->rows++;
	}
}

// Copy every blob `index` references or queues into the ledger. `index` may be a view of old storage (rebuilds).
// Pages that cannot be read (corruption, an older format) are skipped with one WARNING: such an index can always be
// dropped or rebuilt (REINDEX is the cure their errors suggest). Without the ledger (being dropped in this command) an
// index that has blobs is refused.
void TrackIndexBlobs(Relation index, const char *index_name, Oid relfilenode, const char *reason) {
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "s5vector blob ledger", ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	ReadUnit u;
	memset(&u, 0, sizeof(u));
	u.index = index;
	char *msg = nullptr;
	int failed = 0;
	char *first_failure = nullptr;
	if (!ReadGuarded(ReadHeader, &u, &msg)) {
		ereport(WARNING,
		        (errcode(ERRCODE_INDEX_CORRUPTED),
		         errmsg("index \"%s\": its pages could not be read, so the blobs it may have on S5 are not tracked: %s",
		                index_name, msg),
		         errdetail("Such blobs stay on S5 until deleted by hand.")));
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		return;
	}
	bool has_lists = u.tier.meta_blkno != InvalidBlockNumber && u.tier.lists > 0;
	if (!has_lists && u.meta.worker.gc_queue_head == InvalidBlockNumber) {
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		return; // nothing was ever offloaded or queued
	}
	LedgerWriter w;
	memset(&w, 0, sizeof(w));
	w.ledger = LedgerRelid();
	w.index_name = index_name;
	w.reason = reason;
	w.relfilenode = relfilenode;
	w.now = GetCurrentTimestamp();
	AsOwner as;
	bool connected = false, pushed_snapshot = false;
	MemoryContext unit_cxt = AllocSetContextCreate(cxt, "s5vector blob ledger unit", ALLOCSET_DEFAULT_SIZES);
	// Units: each list's parts, then each queue page. The writer starts at the first blob found.
	uint32 nlists = has_lists ? u.tier.lists : 0;
	u.blk = u.meta.worker.gc_queue_head;
	RemoteBlob *page_entries = (RemoteBlob *)palloc(sizeof(RemoteBlob) * GcEntriesPerPage());
	for (uint32 step = 0;; step++) {
		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(unit_cxt);
		MemoryContextSwitchTo(unit_cxt);
		bool ok;
		if (step < nlists) {
			u.list = step;
			ok = ReadGuarded(ReadList, &u, &msg);
		} else {
			if (u.blk == InvalidBlockNumber)
				break;
			u.blobs = page_entries;
			ok = ReadGuarded(ReadQueuePage, &u, &msg);
			u.blk = ok ? u.next : InvalidBlockNumber; // a broken queue chain ends the walk
		}
		MemoryContextSwitchTo(cxt);
		if (!ok) {
			if (failed++ == 0)
				first_failure = pstrdup(msg);
			continue;
		}
		MemoryContextSwitchTo(unit_cxt);
		if (u.n == 0)
			continue;
		if (!connected) {
			if (!OidIsValid(w.ledger))
				ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				                errmsg("cannot drop index \"%s\": it has blobs on S5 and %s is being dropped",
				                       index_name, kLedgerName),
				                errhint("Drop the s5vector indexes first (their blobs go to %s), collect them with "
				                        "s5vector_gc_dropped(), then drop the extension.",
				                        kLedgerName)));
			BecomeLedgerOwner(w.ledger, &as);
			if (!ActiveSnapshotSet()) { // the statement's may be gone (a drop at session end)
				PushActiveSnapshot(GetTransactionSnapshot());
				pushed_snapshot = true;
			}
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "s5vector: SPI_connect failed");
			connected = true;
			char *rel = QualifiedName(w.ledger);
			Oid types[6] = {TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID, OIDOID};
			w.insert = SPI_prepare(psprintf("INSERT INTO %s (cid, queued_at, index_name, reason, state, relfilenode) "
			                                "VALUES ($1, $2, $3, $4, $5, $6)",
			                                rel),
			                       6, types);
			if (w.insert == nullptr)
				elog(ERROR, "s5vector: could not prepare the ledger insert: %s", SPI_result_code_string(SPI_result));
			MemoryContextSwitchTo(unit_cxt); // SPI_connect switched to its own context
		}
		WriteBlobs(&w, step < nlists ? u.blobs : page_entries, u.n);
		MemoryContextSwitchTo(cxt);
	}
	if (connected) {
		SPI_finish();
		if (pushed_snapshot)
			PopActiveSnapshot();
		RestoreUser(&as);
	}
	if (failed > 0)
		ereport(WARNING, (errcode(ERRCODE_INDEX_CORRUPTED),
		                  errmsg("index \"%s\": %d of its pages could not be read; the blobs they reference are not "
		                         "tracked",
		                         index_name, failed),
		                  errdetail("First failure: %s", first_failure)));
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

// The number of entries in the ledger (as its owner).
int64 LedgerCount(Oid ledger) {
	AsOwner as;
	BecomeLedgerOwner(ledger, &as);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "s5vector: SPI_connect failed");
	int rc = SPI_execute(psprintf("SELECT pg_catalog.count(*) FROM %s", QualifiedName(ledger)), true, 0);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "s5vector: could not count %s", kLedgerName);
	bool isnull;
	int64 n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	RestoreUser(&as);
	return n;
}

// DROP EXTENSION s5vector (or of the ledger with it) while the ledger tracks blobs: refused, nothing is forgotten.
void RefuseDropWhileTracked() {
	Oid ledger = LedgerRelid();
	if (!OidIsValid(ledger))
		return;
	int64 n = LedgerCount(ledger);
	if (n > 0)
		ereport(ERROR,
		        (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		         errmsg("cannot drop extension s5vector while %s tracks " INT64_FORMAT " blobs on S5", kLedgerName, n),
		         errhint("Collect them with SELECT s5vector_gc_dropped() once s5vector.gc_grace has passed, or "
		                 "DELETE FROM %s to leave them on S5 for good.",
		                 kLedgerName)));
}

void TrackDroppedIndex(Oid indexoid, const char *name, const char *reason) {
	// The drop holds AccessExclusiveLock (ShareUpdateExclusiveLock for the concurrent forms); the offload lock keeps
	// an offload or collection of this index from being between its intent and its swap while we copy.
	Relation index = index_open(indexoid, AccessShareLock);
	LockOffloadWait(index);
	TrackIndexBlobs(index, name, index->rd_node.relNode, reason);
	index_close(index, NoLock);
}

// DROP INDEX CONCURRENTLY must be the first action of its first transaction (no transaction id yet), which it commits
// after marking the index invalid: the copy waits for that commit (XACT_EVENT_PRE_COMMIT), the offload lock taken at
// the drop hook keeps offloads out until then, and an invalid index gets no new blob (OffloadIndex).
struct DeferredDrop {
	Oid index;
	char name[2 * NAMEDATALEN + 8];
	char reason[32];
};
DeferredDrop *deferred = nullptr;
int ndeferred = 0, deferred_cap = 0;
bool xact_callback_registered = false;

void LedgerXactCallback(XactEvent event, void *) {
	if (ndeferred == 0)
		return;
	if (event == XACT_EVENT_PRE_COMMIT) {
		int n = ndeferred;
		ndeferred = 0;                                // an error below aborts the transaction; nothing is retried
		PushActiveSnapshot(GetTransactionSnapshot()); // DROP INDEX CONCURRENTLY popped the statement's
		for (int i = 0; i < n; i++)
			TrackDroppedIndex(deferred[i].index, deferred[i].name, deferred[i].reason);
		PopActiveSnapshot();
	} else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_COMMIT)
		ndeferred = 0;
}

void DeferDroppedIndex(Oid indexoid) {
	Relation index = index_open(indexoid, AccessShareLock);
	LockOffloadWait(index);
	index_close(index, NoLock);
	if (!xact_callback_registered) {
		RegisterXactCallback(LedgerXactCallback, nullptr);
		xact_callback_registered = true;
	}
	if (ndeferred == deferred_cap) {
		deferred_cap = Max(4, deferred_cap * 2);
		deferred = deferred ? (DeferredDrop *)repalloc(deferred, sizeof(DeferredDrop) * deferred_cap)
		                    : (DeferredDrop *)MemoryContextAlloc(TopMemoryContext, sizeof(DeferredDrop) * deferred_cap);
	}
	DeferredDrop *d = &deferred[ndeferred++];
	d->index = indexoid;
	strlcpy(d->name, QualifiedName(indexoid), sizeof(d->name));
	strlcpy(d->reason, ReasonTag("DROP INDEX"), sizeof(d->reason));
}

// TRUNCATE of a table created, or given new storage, in the current subtransaction truncates its indexes in place
// (no rebuild, the same relfilenode): their blobs are copied here, before that, with no storage check (relfilenode
// 0: the storage lives on with new contents). Such a table is locked AccessExclusiveLock by us already; any other
// TRUNCATE rebuilds the indexes (TrackRebuiltIndexBlobs) and is left alone here.
void TrackTruncatedInPlace(Oid relid) {
	if (!CheckRelationOidLockedByMe(relid, AccessExclusiveLock, false))
		return;
	Relation rel = table_open(relid, NoLock);
	SubTransactionId sub = GetCurrentSubTransactionId();
	bool in_place = rel->rd_createSubid == sub || rel->rd_newRelfilenodeSubid == sub;
	List *indexes = in_place ? RelationGetIndexList(rel) : NIL;
	table_close(rel, NoLock);
	Oid am = get_am_oid("s5vector", true);
	ListCell *lc;
	foreach (lc, indexes) {
		Oid indexoid = lfirst_oid(lc);
		HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(indexoid));
		if (!HeapTupleIsValid(tup))
			continue;
		bool ours = OidIsValid(am) && ((Form_pg_class)GETSTRUCT(tup))->relam == am;
		ReleaseSysCache(tup);
		if (!ours)
			continue;
		Relation index = index_open(indexoid, AccessExclusiveLock); // TRUNCATE takes it next anyway
		TrackIndexBlobs(index, QualifiedName(indexoid), InvalidOid, ReasonTag("TRUNCATE TABLE"));
		index_close(index, NoLock);
	}
}

void LedgerObjectAccess(ObjectAccessType access, Oid classId, Oid objectId, int subId, void *arg) {
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (RecoveryInProgress() || !IsTransactionState())
		return;
	if (access == OAT_TRUNCATE) {
		TrackTruncatedInPlace(objectId);
		return;
	}
	if (access != OAT_DROP || subId != 0)
		return;
	if (classId == RelationRelationId) {
		HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(objectId));
		if (!HeapTupleIsValid(tup))
			return;
		Form_pg_class form = (Form_pg_class)GETSTRUCT(tup);
		char relkind = form->relkind;
		Oid relam = form->relam;
		bool ledger_name = strcmp(NameStr(form->relname), kLedgerName) == 0;
		ReleaseSysCache(tup);
		if (relkind == RELKIND_INDEX) {
			Oid am = get_am_oid("s5vector", true);
			int flags = arg ? ((ObjectAccessDrop *)arg)->dropflags : 0;
			if (!OidIsValid(am) || relam != am)
				return;
			if (flags & PERFORM_DELETION_CONCURRENTLY)
				DeferDroppedIndex(objectId);
			else
				TrackDroppedIndex(objectId, QualifiedName(objectId), ReasonTag("DROP"));
		} else if (relkind == RELKIND_RELATION && ledger_name && objectId == LedgerRelid())
			RefuseDropWhileTracked();
	} else if (classId == ExtensionRelationId && objectId == get_extension_oid("s5vector", true))
		RefuseDropWhileTracked();
}

// A view of an index's old storage during a rebuild: a copy of the relation with the old file. Static, so that the
// storage manager's owner pointer (rd_smgr) stays valid whatever ends the read; no statistics counted against it.
RelationData old_storage_view;

// The storage the index had before this rebuild, scheduled for deletion at commit (PostgreSQL lists it first:
// RelationSetNewRelfilenode schedules the old file right before the build; REINDEX ... TABLESPACE schedules the same
// relfilenode twice, in the new tablespace (no file) and the old one). False when none is found (temporary indexes:
// PostgreSQL does not list their storage).
bool FindOldStorage(Relation index, RelFileNode *out) {
	RelFileNode *pending = nullptr;
	int n = smgrGetPendingDeletes(true, &pending);
	if (n <= 0)
		return false;
	Oid relnode = pending[0].relNode;
	for (int i = 0; i < n; i++) {
		if (pending[i].relNode != relnode || RelFileNodeEquals(pending[i], index->rd_node) ||
		    pending[i].dbNode != index->rd_node.dbNode)
			continue;
		SMgrRelation s = smgropen(pending[i], InvalidBackendId);
		if (smgrexists(s, MAIN_FORKNUM)) {
			*out = pending[i];
			return true;
		}
	}
	return false;
}

} // namespace

void InitBlobLedger() {
	prev_object_access_hook = object_access_hook;
	object_access_hook = LedgerObjectAccess;
}

void TrackRebuiltIndexBlobs(Relation index) {
	if (RecoveryInProgress() || !ReindexIsProcessingIndex(RelationGetRelid(index)) ||
	    index->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		return;
	RelFileNode old;
	if (!FindOldStorage(index, &old))
		return;
	memcpy(&old_storage_view, index, sizeof(RelationData));
	old_storage_view.rd_node = old;
	old_storage_view.rd_smgr = nullptr;
	old_storage_view.rd_amcache = nullptr;
	old_storage_view.pgstat_info = nullptr;
	old_storage_view.pgstat_enabled = false;
	char *name = QualifiedName(RelationGetRelid(index));
	PG_TRY();
	{ TrackIndexBlobs(&old_storage_view, name, old.relNode, ReasonTag("REINDEX")); }
	PG_FINALLY();
	{
		if (old_storage_view.rd_smgr != nullptr)
			smgrclose(old_storage_view.rd_smgr);
		if (old_storage_view.rd_amcache != nullptr)
			pfree(old_storage_view.rd_amcache);
		old_storage_view.rd_amcache = nullptr;
	}
	PG_END_TRY();
}

int64 CollectDroppedBlobs(int64 max_blobs) {
	if (!S5Configured() || s5v_gc_grace_s < 0 || max_blobs <= 0)
		return 0;
	if (RecoveryInProgress())
		ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION), errmsg("cannot collect blobs during recovery"),
		                errhint("A standby never deletes blobs; run s5vector_gc_dropped on the primary.")));
	TimestampTz cutoff = GetCurrentTimestamp() - (TimestampTz)s5v_gc_grace_s * USECS_PER_SEC;
	// First the uploads of builds that left no index (build_journal.h): nothing else records them.
	int64 from_journals = CollectBuildJournals(max_blobs, cutoff);
	max_blobs -= from_journals;
	Oid ledger = LedgerRelid();
	if (!OidIsValid(ledger) || max_blobs <= 0)
		return from_journals;
	MemoryContext cxt =
	    AllocSetContextCreate(CurrentMemoryContext, "s5vector ledger collection", ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	AsOwner as;
	BecomeLedgerOwner(ledger, &as);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "s5vector: SPI_connect failed");
	char *rel = QualifiedName(ledger);
	// Entries past the grace whose storage no relation has any more; locked as read, others' locked ones skipped (two
	// collectors never delete the same blob). Row locks only make other collectors skip: nothing waits on them.
	Oid sel_types[2] = {TIMESTAMPTZOID, INT8OID};
	SPIPlanPtr sel = SPI_prepare(
	    psprintf("SELECT l.ctid, l.cid, l.index_name FROM %s l WHERE l.queued_at OPERATOR(pg_catalog.<=) $1 "
	             "AND (l.relfilenode OPERATOR(pg_catalog.=) 0 OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c "
	             "WHERE c.relfilenode OPERATOR(pg_catalog.=) l.relfilenode)) "
	             "LIMIT $2 FOR UPDATE OF l SKIP LOCKED",
	             rel),
	    2, sel_types);
	Oid del_types[1] = {TIDOID};
	SPIPlanPtr del = SPI_prepare(psprintf("DELETE FROM %s WHERE ctid OPERATOR(pg_catalog.=) $1", rel), 1, del_types);
	if (sel == nullptr || del == nullptr)
		elog(ERROR, "s5vector: could not prepare the ledger collection: %s", SPI_result_code_string(SPI_result));
	Datum args[2] = {TimestampTzGetDatum(cutoff), Int64GetDatum(max_blobs)};
	Portal portal = SPI_cursor_open(nullptr, sel, args, nullptr, false);
	int64 deleted = 0;
	bool warned = false;
	MemoryContext batch_cxt = AllocSetContextCreate(cxt, "s5vector ledger batch", ALLOCSET_DEFAULT_SIZES);
	for (;;) {
		SPI_cursor_fetch(portal, true, kFetchBatch);
		uint64 got = SPI_processed;
		if (got == 0)
			break;
		MemoryContextReset(batch_cxt);
		MemoryContext prev = MemoryContextSwitchTo(batch_cxt);
		ItemPointerData *ctids = (ItemPointerData *)palloc(sizeof(ItemPointerData) * got);
		char **cids = (char **)palloc(sizeof(char *) * got);
		char **names = (char **)palloc(sizeof(char *) * got);
		for (uint64 r = 0; r < got; r++) {
			bool isnull;
			HeapTuple tup = SPI_tuptable->vals[r];
			ctids[r] = *(ItemPointer)DatumGetPointer(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
			cids[r] = SPI_getvalue(tup, SPI_tuptable->tupdesc, 2);
			names[r] = SPI_getvalue(tup, SPI_tuptable->tupdesc, 3);
		}
		SPI_freetuptable(SPI_tuptable);
		for (uint64 r = 0; r < got; r++) {
			CHECK_FOR_INTERRUPTS();
			uint8 hash[32];
			uint64 size = 0;
			bool valid = false;
			const char *text = cids[r] ? cids[r] : "";
			Guarded([&]() -> Status {
				s5::BlobId id;
				if (s5::ParseCid(text, &id).ok()) {
					memcpy(hash, id.hash.data(), 32);
					size = id.size;
					valid = true;
				}
				return Status::Ok();
			});
			if (!valid) {
				if (!warned)
					ereport(WARNING, (errcode(ERRCODE_DATA_CORRUPTED),
					                  errmsg("%s holds an invalid CID \"%s\"; left in place", kLedgerName, text)));
				warned = true;
				continue;
			}
			// Delete (unpin) first, then the entry: a crash or an abort in between deletes again next time (NotFound
			// is fine).
			bool gone =
			    DeleteRemoteBlob(psprintf("blob %s of dropped index %s", text, names[r] ? names[r] : "?"), hash, size);
			Datum key[1] = {PointerGetDatum(&ctids[r])};
			int rc = SPI_execute_plan(del, key, nullptr, false, 0);
			if (rc != SPI_OK_DELETE)
				elog(ERROR, "s5vector: could not delete from %s: %s", kLedgerName, SPI_result_code_string(rc));
			if (gone)
				deleted++;
		}
		MemoryContextSwitchTo(prev);
	}
	SPI_cursor_close(portal);
	SPI_finish();
	RestoreUser(&as);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return deleted + from_journals;
}

} // namespace s5v::pg

using namespace s5v::pg;

// Collection of the ledger (docs/s5.md): superuser or the database's owner.
Datum s5vector_gc_dropped(PG_FUNCTION_ARGS) {
	if (!S5Configured())
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("s5vector.s5_url is not set")));
	RefuseDuringRecovery("collect blobs", "s5vector_gc_dropped");
	if (!superuser() && !pg_database_ownercheck(MyDatabaseId, GetUserId()))
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("must be superuser or the owner of the database to collect dropped blobs")));
	PG_RETURN_INT64(CollectDroppedBlobs(PG_INT64_MAX));
}

// The event trigger on ddl_command_start: calling it loads the library, whose _PG_init installs the object access
// hook before the command drops anything (a session without shared_preload_libraries). Nothing else to do.
Datum s5vector_track_blobs(PG_FUNCTION_ARGS) {
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
		                errmsg("s5vector_track_blobs() is an event trigger function")));
	PG_RETURN_VOID();
}
