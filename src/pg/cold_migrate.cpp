// s5vector_migrate(index, max_rows): hot rows that aged past the window move to the cold tier, one batch, in the
// order of shared/design/TIERS.md: add them cold (WAL-logged), wait for the scans that may have read the cold
// lists before the add (WaitForScans), then remove them from the graph with VACUUM's repair path. A crash between
// the steps leaves rows in both tiers (scans deduplicate by heap TID); the next run adds no second cold copy (it
// looks for the TID in its list first) and removes them from the graph.
extern "C" {
#include "postgres.h"

#include "access/generic_xlog.h"
#include "access/genam.h"
#include "access/relation.h"
#include "access/xlog.h"
#include "catalog/pg_am.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
}

#include "pg/open_index.h"
#include "pg/am.h"
#include "pg/cold_build.h"
#include "pg/cold_migrate.h"
#include "pg/cold_rebalance.h"
#include "pg/cold_store.h"
#include "pg/locks.h"
#include "pg/page_iter.h"

extern "C" {
PG_FUNCTION_INFO_V1(s5vector_migrate);
PGDLLEXPORT Datum s5vector_migrate(PG_FUNCTION_ARGS);
}

namespace s5v::pg {

bool cold_vacuum_suppressed = false;

namespace {

struct MigrateBatch {
	int64 n;
	int64 cap;
	ItemPointerData *tids;
	ItemPointerData *elems; // where each row's hot element is (block, offset)
	int64 *ages;
	uint8 *flags;
	float *vecs;
	uint64 *sorted; // heap TIDs as keys, sorted (the removal's callback)
};

uint64 Key(const ItemPointerData *t) {
	return ((uint64)ItemPointerGetBlockNumber(t) << 16) | ItemPointerGetOffsetNumber(t);
}

int CompareKeys(const void *a, const void *b) {
	uint64 x = *(const uint64 *)a, y = *(const uint64 *)b;
	return x < y ? -1 : x > y ? 1 : 0;
}

bool IsMigrated(ItemPointer tid, void *state) {
	MigrateBatch *b = (MigrateBatch *)state;
	uint64 k = Key(tid);
	return bsearch(&k, b->sorted, b->n, sizeof(uint64), CompareKeys) != nullptr;
}

// Adds the live elements of the iterator's page that are older than the window to the batch, up to max_rows;
// false when the batch filled before the page's end (the page must be read again next time).
bool CollectFromPage(Relation index, uint32 dim, const ColdPolicy &policy, int64 max_rows, const S5vPageIter *it,
                     MigrateBatch *b) {
	OffsetNumber maxoff = PageGetMaxOffsetNumber(it->page);
	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++) {
		S5vElementTuple etup = GetElement(index, it->page, it->blkno, off, dim);
		if (etup == nullptr || (etup->flags & S5V_ELEMENT_DELETED) || !ColdPolicyIsCold(policy, etup->age, etup->flags))
			continue;
		if (b->n >= max_rows)
			return false;
		if (b->n == b->cap) {
			b->cap *= 2;
			b->tids = (ItemPointerData *)repalloc_huge(b->tids, sizeof(ItemPointerData) * b->cap);
			b->elems = (ItemPointerData *)repalloc_huge(b->elems, sizeof(ItemPointerData) * b->cap);
			b->ages = (int64 *)repalloc_huge(b->ages, sizeof(int64) * b->cap);
			b->flags = (uint8 *)repalloc_huge(b->flags, b->cap);
			b->vecs = (float *)repalloc_huge(b->vecs, sizeof(float) * dim * b->cap);
		}
		b->tids[b->n] = etup->heaptid;
		ItemPointerSet(&b->elems[b->n], it->blkno, off);
		b->ages[b->n] = etup->age;
		b->flags[b->n] = etup->flags;
		memcpy(b->vecs + (Size)b->n * dim, etup->x, sizeof(float) * dim);
		b->n++;
	}
	return true;
}

// Live hot elements older than the window, up to max_rows, with their vectors: a sweep over the hot pages that
// starts at `cursor` (the metapage's migration_cursor; InvalidBlockNumber = the first data block), goes to the end
// of the index, then wraps around to the blocks before the cursor, and stops when the batch is full, after
// `max_pages` pages, or after one full circle. Returns where the next sweep resumes: the page where the batch
// filled (it may hold more aged rows), else the block after the last page read (InvalidBlockNumber: the start).
BlockNumber CollectAged(Relation index, const IndexInfoCache &info, const ColdPolicy &policy, int64 max_rows,
                        int64 max_pages, BlockNumber cursor, MigrateBatch *b) {
	uint32 dim = info.dimensions;
	b->n = 0;
	b->cap = 64;
	b->tids = (ItemPointerData *)palloc(sizeof(ItemPointerData) * b->cap);
	b->elems = (ItemPointerData *)palloc(sizeof(ItemPointerData) * b->cap);
	b->ages = (int64 *)palloc(sizeof(int64) * b->cap);
	b->flags = (uint8 *)palloc(b->cap);
	b->vecs = (float *)palloc(sizeof(float) * dim * b->cap);
	BufferAccessStrategy strategy = GetAccessStrategy(BAS_BULKREAD);
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	BlockNumber start = (cursor == InvalidBlockNumber || cursor <= S5V_METAPAGE_BLKNO || cursor >= nblocks)
	                        ? S5V_METAPAGE_BLKNO + 1
	                        : cursor;
	BlockNumber resume = InvalidBlockNumber;
	int64 pages = 0;
	bool stopped = false;
	// Two legs: [start, nblocks), then [first data block, start).
	for (int leg = 0; leg < 2 && !stopped; leg++) {
		if (leg == 1 && start == S5V_METAPAGE_BLKNO + 1)
			break;
		S5vPageIter it;
		PageIterBegin(&it, index, S5V_PAGE_MASK(S5V_PAGE_HOT), BUFFER_LOCK_SHARE, strategy, 0);
		// The iterator's range is its public state: begin at `start` (first leg), end there (second leg).
		if (leg == 0)
			it.next = start;
		else
			it.nblocks = Min(it.nblocks, start);
		while (PageIterNext(&it)) {
			pages++;
			if (!CollectFromPage(index, dim, policy, max_rows, &it, b)) {
				resume = it.blkno; // full before this page's end: read it again next time
				stopped = true;
				break;
			}
			resume = it.blkno + 1 < nblocks ? it.blkno + 1 : InvalidBlockNumber;
			if (b->n >= max_rows || pages >= max_pages) {
				stopped = true;
				break;
			}
		}
		PageIterEnd(&it);
	}
	FreeAccessStrategy(strategy);
	if (!stopped)
		resume = start == S5V_METAPAGE_BLKNO + 1 ? InvalidBlockNumber : start; // a full circle: where it began
	return resume;
}

// Under the cold write lock, before the batch is added cold: drop the rows whose hot element a VACUUM has marked
// deleted (or removed) since the batch was collected. VACUUM marks the hot tier before its cold pass, which waits
// for this lock: a row marked before this check is skipped here (it stays hot, where that VACUUM removes it), and
// one marked after it is already cold when the cold pass runs, which marks it dead there. Without the check a row
// deleted in between would reach the cold tier after the cold pass, and its heap TID, reclaimed by that VACUUM,
// could name another row later. One share-locked read a block (the batch is in block order within each leg).
void DropRowsDeletedSince(Relation index, uint32 dim, MigrateBatch *b) {
	int64 kept = 0;
	Buffer buf = InvalidBuffer;
	BlockNumber cur = InvalidBlockNumber;
	for (int64 i = 0; i < b->n; i++) {
		BlockNumber blk = ItemPointerGetBlockNumber(&b->elems[i]);
		if (blk != cur) {
			if (BufferIsValid(buf))
				UnlockReleaseBuffer(buf);
			buf = ReadBuffer(index, blk);
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			cur = blk;
		}
		Page page = BufferGetPage(buf);
		S5vElementTuple etup = PageIsNew(page) || S5vPageGetOpaque(page)->page_type != S5V_PAGE_HOT
		                           ? nullptr
		                           : GetElement(index, page, blk, ItemPointerGetOffsetNumber(&b->elems[i]), dim);
		if (etup == nullptr || (etup->flags & S5V_ELEMENT_DELETED) || !ItemPointerEquals(&etup->heaptid, &b->tids[i]))
			continue;
		if (kept != i) {
			b->tids[kept] = b->tids[i];
			b->elems[kept] = b->elems[i];
			b->ages[kept] = b->ages[i];
			b->flags[kept] = b->flags[i];
			memmove(b->vecs + (Size)kept * dim, b->vecs + (Size)i * dim, sizeof(float) * dim);
		}
		kept++;
	}
	if (BufferIsValid(buf))
		UnlockReleaseBuffer(buf);
	b->n = kept;
}

// The migration sweep's state in the metapage (one Generic WAL record): where the next sweep resumes, and when
// this step ran. Read-modify-write of these two fields under the metapage's exclusive lock, holding no other lock.
void RecordMigrationStep(Relation index, BlockNumber cursor) {
	Buffer buf = ReadBuffer(index, S5V_METAPAGE_BLKNO);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	GenericXLogState *state = GenericXLogStart(index);
	Page page = GenericXLogRegisterBuffer(state, buf, 0);
	S5vMetaPage m = S5vPageGetMeta(page);
	m->worker.migration_cursor = (cursor != InvalidBlockNumber && cursor < nblocks) ? cursor : InvalidBlockNumber;
	m->worker.last_migration = GetCurrentTimestamp();
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
}

} // namespace

int64 MigrateIndex(Relation index, int64 max_rows) {
	const IndexInfoCache &info = GetIndexInfo(index);
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	ColdPolicy policy;
	ColdPolicyOfIndex(index, info.age_kind, &policy); // the window now (ALTER INDEX SET), not the build's
	int64 moved = 0;
	if (policy.enabled && max_rows > 0) {
		MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "s5vector migrate", ALLOCSET_DEFAULT_SIZES);
		MemoryContext old = MemoryContextSwitchTo(cxt);
		MigrateBatch batch;
		// A batch of max_rows reads at most max_rows hot pages (each holds at least one element), so one call does
		// work proportional to its batch, not to the index; NULL (all) reads every page once.
		int64 max_pages = max_rows == PG_INT64_MAX ? PG_INT64_MAX : Max(max_rows, (int64)1);
		volatile BlockNumber resume = // volatile: read after PG_TRY below
		    CollectAged(index, info, policy, max_rows, max_pages, meta.worker.migration_cursor, &batch);
		if (batch.n > 0) {
			// 1. Add them cold (a row a crash left there already is not added twice).
			LockColdWrite(index);
			DropRowsDeletedSince(index, info.dimensions, &batch);
			for (int64 i = 0; i < batch.n; i++) {
				CHECK_FOR_INTERRUPTS();
				ColdAddRowLocked(index, info, meta, &batch.tids[i], batch.ages[i], batch.flags[i],
				                 batch.vecs + (Size)i * info.dimensions, true);
			}
			UnlockColdWrite(index);
			// 2. Scans that started before the add may have read the lists already: wait for them.
			WaitForScans(index);
			// 3. Remove them from the graph: VACUUM's path (mark, repair the neighbours, remove), hot tier only.
			batch.sorted = (uint64 *)palloc(sizeof(uint64) * batch.n);
			for (int64 i = 0; i < batch.n; i++)
				batch.sorted[i] = Key(&batch.tids[i]);
			qsort(batch.sorted, batch.n, sizeof(uint64), CompareKeys);
			IndexVacuumInfo vi;
			memset(&vi, 0, sizeof(vi));
			vi.index = index;
			vi.message_level = DEBUG2;
			vi.num_heap_tuples = -1;
			vi.strategy = GetAccessStrategy(BAS_VACUUM);
			cold_vacuum_suppressed = true;
			PG_TRY();
			{ (void)BulkDelete(&vi, nullptr, IsMigrated, &batch); }
			PG_FINALLY();
			{ cold_vacuum_suppressed = false; }
			PG_END_TRY();
			moved = batch.n;
		}
		// Last, once the batch is out of the graph: a crash before this leaves the cursor where the batch began, so
		// the next sweep finds the rows left in both tiers.
		RecordMigrationStep(index, resume);
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
	}
	// Lists the batch made far larger than the mean are split now (a step that another one already runs is
	// skipped: -1); the check reads the centroid pages only.
	if (moved > 0 && ColdRebalanceNeeded(index))
		(void)ColdRebalance(index, false);
	return moved;
}

} // namespace s5v::pg

using namespace s5v::pg;

Datum s5vector_migrate(PG_FUNCTION_ARGS) {
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	Oid relid = PG_GETARG_OID(0);
	int64 max_rows = PG_ARGISNULL(1) ? PG_INT64_MAX : PG_GETARG_INT64(1);
	if (max_rows < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("max_rows must not be negative")));
	RefuseDuringRecovery("migrate rows", "s5vector_migrate");
	Relation index = OpenOwnedIndex(relid, RowExclusiveLock);
	int64 moved = MigrateIndex(index, max_rows);
	relation_close(index, RowExclusiveLock);
	PG_RETURN_INT64(moved);
}
