// VACUUM: mark elements of dead heap rows deleted, repair the neighbours that pointed to them (the core's
// Repair), remove the deleted elements so their space is reused through the free space map, then reconnect any
// live element the graph no longer reaches. The graph write lock is held throughout, so inserts wait (scans do
// not). Counters on the metapage change in the same WAL record as the elements they count.
extern "C" {
#include "postgres.h"

#include "access/generic_xlog.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/freespace.h"
#include "storage/indexfsm.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"
}

#include "pg/am.h"
#include "pg/cold_store.h"
#include "pg/graph_load.h"
#include "pg/guard.h"
#include "pg/index.h"
#include "pg/page_store.h"

#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace s5v::pg {

namespace {

struct ItemSpan {
	uint16 start;
	uint16 len;
	OffsetNumber off;
};

int CompareItemSpans(const void *a, const void *b) {
	const ItemSpan *x = (const ItemSpan *)a, *y = (const ItemSpan *)b;
	return x->start < y->start ? -1 : (x->start > y->start ? 1 : 0);
}

// VACUUM edits pages through their line pointers: two line pointers that share (alias) or overlap one tuple
// would make it count an element twice and remove tuples through a stale pointer. Refuse such a page.
void CheckLinePointers(Relation index, Page page, BlockNumber blk) {
	ItemSpan spans[MaxOffsetNumber];
	int n = 0;
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff && n < MaxOffsetNumber; off++) {
		ItemId iid = PageGetItemId(page, off);
		if (ItemIdIsNormal(iid))
			spans[n++] = {(uint16)ItemIdGetOffset(iid), (uint16)ItemIdGetLength(iid), off};
	}
	qsort(spans, n, sizeof(ItemSpan), CompareItemSpans);
	for (int i = 1; i < n; i++) {
		if ((uint32)spans[i - 1].start + spans[i - 1].len > spans[i].start)
			ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
			                errmsg("index \"%s\" has line pointers %u and %u on block %u that share a tuple",
			                       RelationGetRelationName(index), spans[i - 1].off, spans[i].off, blk),
			                errhint("Please REINDEX it.")));
	}
}

// Pass 1: mark elements whose heap row is dead. Collects the ids of every element marked deleted (now or by an
// earlier VACUUM that did not finish).
void MarkDeleted(Relation index, uint32 dim, IndexBulkDeleteCallback callback, void *cb_state,
                 BufferAccessStrategy strategy, uint64 **ids, int64 *nids, int64 *live, int64 *removed) {
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	int64 cap = 1024;
	*ids = (uint64 *)palloc_extended(sizeof(uint64) * cap, MCXT_ALLOC_HUGE);
	for (BlockNumber blk = S5V_METAPAGE_BLKNO + 1; blk < nblocks; blk++) {
		vacuum_delay_point();
		Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, blk, RBM_NORMAL, strategy);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		Page page = BufferGetPage(buf);
		if (PageIsNew(page)) {
			UnlockReleaseBuffer(buf);
			continue;
		}
		CheckPage(index, page, blk);
		CheckLinePointers(index, page, blk);
		// Decide first (on the shared page), then apply in one WAL record with the metapage counters.
		OffsetNumber dead[MaxOffsetNumber];
		int ndead = 0;
		OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
		for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++) {
			S5vElementTuple etup = GetElement(index, page, blk, off, dim);
			if (etup == nullptr)
				continue;
			bool deleted = (etup->flags & S5V_ELEMENT_DELETED) != 0;
			if (!deleted && callback(&etup->heaptid, cb_state)) {
				dead[ndead++] = off;
				deleted = true;
			}
			if (deleted) {
				if (*nids == cap) {
					cap *= 2;
					*ids = (uint64 *)repalloc_huge(*ids, sizeof(uint64) * cap);
				}
				(*ids)[(*nids)++] = NodeIdFromTid(blk, off);
			} else {
				(*live)++;
			}
		}
		if (ndead > 0) {
			Buffer metabuf = ReadBuffer(index, S5V_METAPAGE_BLKNO);
			LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
			GenericXLogState *state = GenericXLogStart(index);
			Page wpage = GenericXLogRegisterBuffer(state, buf, 0);
			S5vMetaPage meta = S5vPageGetMeta(GenericXLogRegisterBuffer(state, metabuf, 0));
			for (int i = 0; i < ndead; i++) {
				S5vElementTuple etup = (S5vElementTuple)PageGetItem(wpage, PageGetItemId(wpage, dead[i]));
				etup->flags |= S5V_ELEMENT_DELETED;
			}
			meta->hot_elements -= ndead;
			meta->hot_deleted += ndead;
			GenericXLogFinish(state);
			UnlockReleaseBuffer(metabuf);
			*removed += ndead;
		}
		UnlockReleaseBuffer(buf);
	}
}

// Live elements that link to a deleted one, with their levels; and the live element of highest level.
typedef bool (*IsDeletedFn)(void *arg, uint64 id);

void FindBrokenLinks(Relation index, uint32 dim, IsDeletedFn is_deleted, void *arg, BufferAccessStrategy strategy,
                     uint64 **out, int **levels, int64 *nout, uint64 *best_entry, int *best_level) {
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	BlockNumber known = nblocks; // for checking TIDs (may grow), not the loop bound
	int64 cap = 1024;
	*out = (uint64 *)palloc_extended(sizeof(uint64) * cap, MCXT_ALLOC_HUGE);
	*levels = (int *)palloc_extended(sizeof(int) * cap, MCXT_ALLOC_HUGE);
	*best_entry = ~(uint64)0;
	*best_level = -1;
	for (BlockNumber blk = S5V_METAPAGE_BLKNO + 1; blk < nblocks; blk++) {
		vacuum_delay_point();
		Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, blk, RBM_NORMAL, strategy);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		Page page = BufferGetPage(buf);
		if (!PageIsNew(page))
			CheckPage(index, page, blk);
		OffsetNumber maxoff = PageIsNew(page) ? InvalidOffsetNumber : PageGetMaxOffsetNumber(page);
		for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++) {
			S5vElementTuple etup = GetElement(index, page, blk, off, dim);
			if (etup == nullptr || (etup->flags & S5V_ELEMENT_DELETED))
				continue;
			if (etup->level > *best_level) {
				*best_level = etup->level;
				*best_entry = NodeIdFromTid(blk, off);
			}
			CheckIndexBlock(index, ItemPointerGetBlockNumberNoCheck(&etup->neighbortid), &known,
			                "a neighbour-list TID");
			Buffer nbuf;
			S5vNeighborTuple ntup = NeighborTupleOf(index, buf, blk, etup, strategy, &nbuf, false);
			bool broken = false;
			for (int s = 0; ntup != nullptr && s < ntup->count && !broken; s++) {
				ItemPointer t = &ntup->tids[s];
				if (ItemPointerIsValid(t) &&
				    is_deleted(arg, NodeIdFromTid(ItemPointerGetBlockNumber(t), ItemPointerGetOffsetNumber(t))))
					broken = true;
			}
			ReleaseNeighborPage(buf, nbuf);
			if (broken) {
				if (*nout == cap) {
					cap *= 2;
					*out = (uint64 *)repalloc_huge(*out, sizeof(uint64) * cap);
					*levels = (int *)repalloc_huge(*levels, sizeof(int) * cap);
				}
				(*levels)[*nout] = etup->level;
				(*out)[(*nout)++] = NodeIdFromTid(blk, off);
			}
		}
		UnlockReleaseBuffer(buf);
	}
}

// Remove the tuples at `offs` from page `blk` (one WAL record, with the metapage's pending-deletion counter), and
// tell the free space map how much room the page now has.
void RemoveTuples(Relation index, BlockNumber blk, const OffsetNumber *offs, int n, int elements_removed,
                  BufferAccessStrategy strategy, bool only_neighbor_tuples) {
	Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, blk, RBM_NORMAL, strategy);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	if (only_neighbor_tuples) {
		// A neighbour tuple on another page than its element: the TID came from the element, check what it names.
		Page p = BufferGetPage(buf);
		CheckPage(index, p, blk);
		for (int i = 0; i < n; i++) {
			if (GetNeighborTuple(index, p, blk, offs[i]) == nullptr) {
				UnlockReleaseBuffer(buf);
				return;
			}
		}
	}
	Buffer metabuf = ReadBuffer(index, S5V_METAPAGE_BLKNO);
	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
	GenericXLogState *state = GenericXLogStart(index);
	Page page = GenericXLogRegisterBuffer(state, buf, 0);
	S5vMetaPage meta = S5vPageGetMeta(GenericXLogRegisterBuffer(state, metabuf, 0));
	// Highest offset first, so that removing a trailing line pointer does not move the others.
	for (int i = 0; i < n; i++) {
		OffsetNumber off = offs[i];
		if (off <= PageGetMaxOffsetNumber(page) && ItemIdIsNormal(PageGetItemId(page, off)))
			PageIndexTupleDeleteNoCompact(page, off);
	}
	meta->hot_deleted -= elements_removed;
	Size free_space = PageGetFreeSpace(page);
	GenericXLogFinish(state);
	UnlockReleaseBuffer(metabuf);
	UnlockReleaseBuffer(buf);
	RecordPageWithFreeSpace(index, blk, free_space);
}

// Pass 3: remove deleted elements (now unreferenced) and their neighbour tuples.
void RemoveDeleted(Relation index, uint32 dim, BufferAccessStrategy strategy) {
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	BlockNumber known = nblocks; // for checking TIDs (may grow), not the loop bound
	// Neighbour tuples that live on another page than their element, removed after the element pages.
	int64 cap = 64, nfar = 0;
	ItemPointerData *far = (ItemPointerData *)palloc(sizeof(ItemPointerData) * cap);
	for (BlockNumber blk = S5V_METAPAGE_BLKNO + 1; blk < nblocks; blk++) {
		vacuum_delay_point();
		// Offsets to remove, as a set: one slot per line pointer, whatever the tuples claim.
		bool remove[MaxOffsetNumber + 1];
		OffsetNumber offs[MaxOffsetNumber];
		int n = 0, elements = 0;
		Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, blk, RBM_NORMAL, strategy);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		Page page = BufferGetPage(buf);
		if (!PageIsNew(page)) {
			CheckPage(index, page, blk);
			CheckLinePointers(index, page, blk);
			OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
			memset(remove, 0, sizeof(bool) * (maxoff + 1));
			for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++) {
				S5vElementTuple etup = GetElement(index, page, blk, off, dim);
				if (etup == nullptr || !(etup->flags & S5V_ELEMENT_DELETED))
					continue;
				remove[off] = true;
				elements++;
				BlockNumber nblk = ItemPointerGetBlockNumberNoCheck(&etup->neighbortid);
				OffsetNumber noff = ItemPointerGetOffsetNumberNoCheck(&etup->neighbortid);
				if (nblk == blk) {
					// Only a neighbour tuple: a TID naming another element must not remove it.
					if (GetNeighborTuple(index, page, blk, noff) != nullptr)
						remove[noff] = true;
				} else {
					CheckIndexBlock(index, nblk, &known, "a neighbour-list TID");
					if (nfar == cap) {
						cap *= 2;
						far = (ItemPointerData *)repalloc_huge(far, sizeof(ItemPointerData) * cap);
					}
					far[nfar++] = etup->neighbortid;
				}
			}
			// Highest offset first, so that removing a trailing line pointer does not move the others.
			for (OffsetNumber off = maxoff; off >= FirstOffsetNumber; off--)
				if (remove[off])
					offs[n++] = off;
		}
		UnlockReleaseBuffer(buf);
		if (n > 0)
			RemoveTuples(index, blk, offs, n, elements, strategy, false);
	}
	for (int64 i = 0; i < nfar; i++) {
		vacuum_delay_point();
		OffsetNumber off = ItemPointerGetOffsetNumber(&far[i]);
		RemoveTuples(index, ItemPointerGetBlockNumber(&far[i]), &off, 1, 0, strategy, true);
	}
}

bool IsDeletedInSet(void *arg, uint64 id) {
	return ((std::unordered_set<uint64> *)arg)->count(id) > 0;
}

// C++ state of one VACUUM; owned by its memory context (deleted by the reset callback, also on error).
struct VacuumObjects {
	std::unordered_set<uint64> deleted;
};

void DeleteVacuumObjects(void *arg) {
	VacuumObjects **objs = (VacuumObjects **)arg;
	delete *objs;
	*objs = nullptr;
}

} // namespace

// Repair every live element the graph cannot reach any more (Repair gives it back-links), a few rounds.
void ReconnectUnreachable(Relation index, const IndexInfoCache &ic, BufferAccessStrategy strategy) {
	const int rounds = 4;
	for (int round = 0; round < rounds; round++) {
		LoadedGraph graph;
		LoadGraph(index, ic, strategy, &graph);
		S5vMetaPageData meta;
		ReadMetaPage(index, &meta);
		if (meta.entry_blkno == InvalidBlockNumber)
			return;
		uint64 entry = NodeIdFromTid(meta.entry_blkno, meta.entry_offno);
		bool again = false;
		Guarded([&]() -> Status {
			GraphCsr csr;
			S5V_RETURN_IF_ERROR(BuildCsr(graph, entry, csr));
			std::vector<uint32_t> lost;
			S5V_RETURN_IF_ERROR(hnsw::FindUnreachable(csr.offsets, csr.targets, csr.entry_index, csr.live, lost));
			if (lost.empty())
				return Status::Ok();
			again = true;
			PageGraphStore store(index, ic);
			InterruptToken cancel;
			hnsw::Params params{ic.m, Min(2 * ic.ef_construction, S5V_MAX_EF_CONSTRUCTION)};
			if (round == rounds - 1)
				return hnsw::ForceLinks(store, params, csr.offsets, csr.targets, csr.ids, csr.entry_index, lost);
			std::vector<float> vec;
			for (uint32_t i : lost) {
				if (cancel.cancelled())
					return Status::Cancelled();
				S5V_RETURN_IF_ERROR(store.Vector(csr.ids[i], vec));
				S5V_RETURN_IF_ERROR(hnsw::Repair(store, csr.ids[i], graph.elements[i].level, vec.data(), ic.dimensions,
				                                 params, cancel));
			}
			return Status::Ok();
		});
		if (!again)
			return;
	}
}

IndexBulkDeleteResult *BulkDelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats, IndexBulkDeleteCallback callback,
                                  void *callback_state) {
	Relation index = info->index;
	if (stats == nullptr)
		stats = (IndexBulkDeleteResult *)palloc0(sizeof(IndexBulkDeleteResult));
	IndexInfoCache ic = GetIndexInfo(index);

	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "s5vector vacuum", ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	VacuumObjects **objs = (VacuumObjects **)palloc0(sizeof(VacuumObjects *));
	MemoryContextCallback *cb = (MemoryContextCallback *)palloc(sizeof(MemoryContextCallback));
	cb->func = DeleteVacuumObjects;
	cb->arg = objs;
	MemoryContextRegisterResetCallback(cxt, cb);

	LockPage(index, S5V_GRAPH_WRITE_LOCK, ExclusiveLock);

	uint64 *ids;
	int64 nids = 0, live = 0, removed = 0;
	MarkDeleted(index, ic.dimensions, callback, callback_state, info->strategy, &ids, &nids, &live, &removed);

	if (nids > 0) {
		Guarded([&]() -> Status {
			*objs = new VacuumObjects();
			(*objs)->deleted.reserve(nids);
			for (int64 i = 0; i < nids; i++)
				(*objs)->deleted.insert(ids[i]);
			return Status::Ok();
		});
		uint64 *broken;
		int *levels;
		int64 nbroken = 0;
		uint64 best_entry;
		int best_level;
		FindBrokenLinks(index, ic.dimensions, IsDeletedInSet, &(*objs)->deleted, info->strategy, &broken, &levels,
		                &nbroken, &best_entry, &best_level);

		// The entry point must be live before anything searches from it.
		S5vMetaPageData meta;
		ReadMetaPage(index, &meta);
		uint64 entry =
		    meta.entry_blkno == InvalidBlockNumber ? ~(uint64)0 : NodeIdFromTid(meta.entry_blkno, meta.entry_offno);
		bool entry_deleted = entry != ~(uint64)0 && (*objs)->deleted.count(entry) > 0;
		Guarded([&]() -> Status {
			PageGraphStore store(index, ic);
			InterruptToken cancel;
			if (entry_deleted)
				S5V_RETURN_IF_ERROR(store.SetEntryPoint(best_level < 0 ? hnsw::kNoNode : best_entry, best_level));
			hnsw::Params params{ic.m, Min(2 * ic.ef_construction, S5V_MAX_EF_CONSTRUCTION)};
			std::vector<float> vec;
			for (int64 i = 0; i < nbroken; i++) {
				if (cancel.cancelled())
					return Status::Cancelled();
				S5V_RETURN_IF_ERROR(store.Vector(broken[i], vec));
				S5V_RETURN_IF_ERROR(
				    hnsw::Repair(store, broken[i], levels[i], vec.data(), ic.dimensions, params, cancel));
			}
			return Status::Ok();
		});
		RemoveDeleted(index, ic.dimensions, info->strategy);
		ReconnectUnreachable(index, ic, info->strategy);
	}
	stats->tuples_removed += removed;
	stats->num_index_tuples = live;
	// Cold tier hook: dead heap TIDs of the cold lists are marked dead (cold_vacuum.cpp).
	int64 cold_removed, cold_live;
	ColdBulkDelete(index, ic.dimensions, callback, callback_state, info->strategy, &cold_removed, &cold_live);
	stats->tuples_removed += cold_removed;
	stats->num_index_tuples += cold_live;

	UnlockPage(index, S5V_GRAPH_WRITE_LOCK, ExclusiveLock);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return stats;
}

IndexBulkDeleteResult *VacuumCleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats) {
	if (info->analyze_only)
		return stats;
	if (stats == nullptr) {
		// No bulk delete ran (no dead rows): still give back connectivity that concurrent inserts may have cost.
		IndexInfoCache ic = GetIndexInfo(info->index);
		MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "s5vector vacuum", ALLOCSET_DEFAULT_SIZES);
		MemoryContext old = MemoryContextSwitchTo(cxt);
		LockPage(info->index, S5V_GRAPH_WRITE_LOCK, ExclusiveLock);
		ReconnectUnreachable(info->index, ic, info->strategy);
		UnlockPage(info->index, S5V_GRAPH_WRITE_LOCK, ExclusiveLock);
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		stats = (IndexBulkDeleteResult *)palloc0(sizeof(IndexBulkDeleteResult));
		S5vMetaPageData meta;
		ReadMetaPage(info->index, &meta);
		stats->num_index_tuples = (double)meta.hot_elements;
		ColdTierInfo tier; // cold tier hook: its live rows count too
		ReadColdTier(info->index, meta, meta.dimensions, &tier);
		stats->num_index_tuples += (double)(tier.cold_rows - tier.dead_rows);
	}
	stats->num_pages = RelationGetNumberOfBlocks(info->index);
	IndexFreeSpaceMapVacuum(info->index);
	return stats;
}

} // namespace s5v::pg
