// VACUUM: mark elements of dead heap rows deleted, repair the neighbours that pointed to them (the core's Repair),
// then unlink the deleted elements and give pages that hold nothing live back to the free space map.
// The whole pass holds the graph write lock, so inserts wait for it (scans do not).
extern "C" {
#include "postgres.h"

#include "access/generic_xlog.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/indexfsm.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"
}

#include "pg/am.h"
#include "pg/guard.h"
#include "pg/index.h"
#include "pg/page_store.h"

#include <unordered_set>
#include <vector>

namespace s5v::pg {

namespace {

struct VacuumObjects {
	std::unordered_set<uint64> deleted;   // elements marked deleted by this pass (or earlier, not yet unlinked)
	std::vector<uint64> to_repair;        // live elements with a deleted neighbour
	std::vector<int> to_repair_levels;
};

struct VacuumState {
	VacuumObjects *objects;
	int64 live;
	int64 removed;
};

void DeleteVacuumObjects(void *arg) {
	VacuumState *vs = (VacuumState *)arg;
	delete vs->objects;
	vs->objects = nullptr;
}

// Pass 1: mark elements whose heap row is dead. Returns the ids of every deleted-but-linked element.
void MarkDeleted(Relation index, uint32 dim, IndexBulkDeleteCallback callback, void *cb_state, VacuumState *vs,
                 BufferAccessStrategy strategy, uint64 *ids, int64 *nids, int64 maxids) {
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	for (BlockNumber blk = S5V_METAPAGE_BLKNO + 1; blk < nblocks; blk++) {
		vacuum_delay_point();
		Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, blk, RBM_NORMAL, strategy);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		GenericXLogState *state = GenericXLogStart(index);
		Page page = GenericXLogRegisterBuffer(state, buf, 0);
		bool changed = false;
		if (!PageIsNew(page))
			CheckPage(index, page, blk);
		if (!PageIsNew(page) && S5vPageGetOpaque(page)->page_type == S5V_PAGE_HOT) {
			OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
			for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++) {
				S5vElementTuple etup = GetElement(index, page, blk, off, dim);
				if (etup == nullptr || (etup->flags & S5V_ELEMENT_UNLINKED))
					continue;
				if (!(etup->flags & S5V_ELEMENT_DELETED) && callback(&etup->heaptid, cb_state)) {
					etup->flags |= S5V_ELEMENT_DELETED;
					changed = true;
					vs->removed++;
				}
				if (etup->flags & S5V_ELEMENT_DELETED) {
					if (*nids < maxids)
						ids[(*nids)++] = NodeIdFromTid(blk, off);
				} else {
					vs->live++;
				}
			}
		}
		if (changed)
			GenericXLogFinish(state);
		else
			GenericXLogAbort(state);
		UnlockReleaseBuffer(buf);
	}
}

// Pass 2 (scan): find live elements that link to a deleted one; also pick a live entry point candidate.
// `is_deleted` is answered by the C++ set through a plain callback.
typedef bool (*IsDeletedFn)(void *arg, uint64 id);

void FindBrokenLinks(Relation index, uint32 dim, int m, IsDeletedFn is_deleted, void *arg, uint64 *out, int *levels,
                     int64 *nout, int64 maxout, uint64 *best_entry, int *best_level, BufferAccessStrategy strategy) {
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	*best_entry = ~(uint64)0;
	*best_level = -1;
	for (BlockNumber blk = S5V_METAPAGE_BLKNO + 1; blk < nblocks; blk++) {
		vacuum_delay_point();
		Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, blk, RBM_NORMAL, strategy);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		Page page = BufferGetPage(buf);
		if (!PageIsNew(page))
			CheckPage(index, page, blk);
		if (!PageIsNew(page) && S5vPageGetOpaque(page)->page_type == S5V_PAGE_HOT) {
			OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
			for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++) {
				S5vElementTuple etup = GetElement(index, page, blk, off, dim);
				if (etup == nullptr || (etup->flags & (S5V_ELEMENT_DELETED | S5V_ELEMENT_UNLINKED)))
					continue;
				if (etup->level > *best_level) {
					*best_level = etup->level;
					*best_entry = NodeIdFromTid(blk, off);
				}
				// Read its neighbour tuple (usually on this page).
				BlockNumber nblk = ItemPointerGetBlockNumber(&etup->neighbortid);
				OffsetNumber noff = ItemPointerGetOffsetNumber(&etup->neighbortid);
				Buffer nbuf = buf;
				if (nblk != blk) {
					nbuf = ReadBufferExtended(index, MAIN_FORKNUM, nblk, RBM_NORMAL, strategy);
					LockBuffer(nbuf, BUFFER_LOCK_SHARE);
				}
				Page npage = BufferGetPage(nbuf);
				bool broken = false;
				CheckPage(index, npage, nblk);
				S5vNeighborTuple ntup = GetNeighborTuple(index, npage, nblk, noff);
				if (ntup != nullptr) {
					for (int s = 0; s < ntup->count && !broken; s++) {
						ItemPointer t = &ntup->tids[s];
						if (ItemPointerIsValid(t) &&
						    is_deleted(arg, NodeIdFromTid(ItemPointerGetBlockNumber(t), ItemPointerGetOffsetNumber(t))))
							broken = true;
					}
				}
				if (nbuf != buf)
					UnlockReleaseBuffer(nbuf);
				if (broken && *nout < maxout) {
					levels[*nout] = etup->level;
					out[(*nout)++] = NodeIdFromTid(blk, off);
				}
			}
		}
		UnlockReleaseBuffer(buf);
	}
}

// Pass 3: unlink deleted elements; pages left with nothing live go to the FSM.
void UnlinkDeleted(Relation index, uint32 dim, BufferAccessStrategy strategy, int64 *freed_pages) {
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	for (BlockNumber blk = S5V_METAPAGE_BLKNO + 1; blk < nblocks; blk++) {
		vacuum_delay_point();
		Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, blk, RBM_NORMAL, strategy);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		GenericXLogState *state = GenericXLogStart(index);
		Page page = GenericXLogRegisterBuffer(state, buf, 0);
		bool changed = false;
		bool reclaim = false;
		if (!PageIsNew(page))
			CheckPage(index, page, blk);
		if (!PageIsNew(page) && S5vPageGetOpaque(page)->page_type == S5V_PAGE_HOT) {
			OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
			int elements = 0, unlinked = 0, neighbor_tuples = 0, own_neighbor_tuples = 0;
			for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++) {
				if (GetNeighborTuple(index, page, blk, off) != nullptr) {
					neighbor_tuples++;
					continue;
				}
				S5vElementTuple etup = GetElement(index, page, blk, off, dim);
				if (etup == nullptr)
					continue;
				elements++;
				if (ItemPointerGetBlockNumber(&etup->neighbortid) == blk)
					own_neighbor_tuples++;
				if ((etup->flags & S5V_ELEMENT_DELETED) && !(etup->flags & S5V_ELEMENT_UNLINKED)) {
					etup->flags |= S5V_ELEMENT_UNLINKED;
					ItemPointerSetInvalid(&etup->heaptid);
					changed = true;
				}
				if (etup->flags & S5V_ELEMENT_UNLINKED)
					unlinked++;
			}
			if (elements > 0 && unlinked == elements && neighbor_tuples == own_neighbor_tuples) {
				InitPage(page, S5V_PAGE_HOT);
				changed = true;
				reclaim = true;
			}
		}
		if (changed)
			GenericXLogFinish(state);
		else
			GenericXLogAbort(state);
		UnlockReleaseBuffer(buf);
		if (reclaim) {
			RecordFreeIndexPage(index, blk);
			(*freed_pages)++;
		}
	}
}

bool IsDeletedInSet(void *arg, uint64 id) {
	VacuumObjects *objs = (VacuumObjects *)arg;
	return objs->deleted.count(id) > 0;
}

void UpdateCounters(Relation index, int64 live, int64 deleted) {
	Buffer buf = ReadBuffer(index, S5V_METAPAGE_BLKNO);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	GenericXLogState *state = GenericXLogStart(index);
	Page page = GenericXLogRegisterBuffer(state, buf, 0);
	S5vMetaPage meta = S5vPageGetMeta(page);
	meta->hot_elements = live;
	meta->hot_deleted += deleted;
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
}

} // namespace

IndexBulkDeleteResult *BulkDelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
                                  IndexBulkDeleteCallback callback, void *callback_state) {
	Relation index = info->index;
	if (stats == nullptr)
		stats = (IndexBulkDeleteResult *)palloc0(sizeof(IndexBulkDeleteResult));
	IndexInfoCache ic = GetIndexInfo(index);

	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "s5vector vacuum", ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	VacuumState *vs = (VacuumState *)palloc0(sizeof(VacuumState));
	MemoryContextCallback *cb = (MemoryContextCallback *)palloc(sizeof(MemoryContextCallback));
	cb->func = DeleteVacuumObjects;
	cb->arg = vs;
	MemoryContextRegisterResetCallback(cxt, cb);
	Guarded([&]() -> Status {
		vs->objects = new VacuumObjects();
		return Status::Ok();
	});

	LockPage(index, S5V_GRAPH_WRITE_LOCK, ExclusiveLock);

	int64 maxids = Max((int64)RelationGetNumberOfBlocks(index) * (BLCKSZ / 32), 1024);
	uint64 *ids = (uint64 *)palloc_extended(sizeof(uint64) * maxids, MCXT_ALLOC_HUGE);
	int64 nids = 0;
	MarkDeleted(index, ic.dimensions, callback, callback_state, vs, info->strategy, ids, &nids, maxids);

	if (nids > 0) {
		Guarded([&]() -> Status {
			vs->objects->deleted.reserve(nids);
			for (int64 i = 0; i < nids; i++)
				vs->objects->deleted.insert(ids[i]);
			return Status::Ok();
		});
		uint64 *broken = (uint64 *)palloc_extended(sizeof(uint64) * maxids, MCXT_ALLOC_HUGE);
		int *levels = (int *)palloc_extended(sizeof(int) * maxids, MCXT_ALLOC_HUGE);
		int64 nbroken = 0;
		uint64 best_entry;
		int best_level;
		FindBrokenLinks(index, ic.dimensions, ic.m, IsDeletedInSet, vs->objects, broken, levels, &nbroken, maxids, &best_entry,
		                &best_level, info->strategy);

		// The entry point must be live before anything searches from it.
		S5vMetaPageData meta;
		ReadMetaPage(index, &meta);
		uint64 entry = meta.entry_blkno == InvalidBlockNumber ? ~(uint64)0
		                                                       : NodeIdFromTid(meta.entry_blkno, meta.entry_offno);
		bool entry_deleted = entry != ~(uint64)0 && vs->objects->deleted.count(entry) > 0;
		Guarded([&]() -> Status {
			PageGraphStore store(index, ic);
			InterruptToken cancel;
			if (entry_deleted)
				S5V_RETURN_IF_ERROR(store.SetEntryPoint(best_entry, best_level));
			hnsw::Params params{ic.m, ic.ef_construction};
			std::vector<float> vec;
			for (int64 i = 0; i < nbroken; i++) {
				if (cancel.cancelled())
					return Status::Cancelled();
				S5V_RETURN_IF_ERROR(store.Vector(broken[i], vec));
				S5V_RETURN_IF_ERROR(hnsw::Repair(store, broken[i], levels[i], vec.data(), ic.dimensions, params, cancel));
			}
			return Status::Ok();
		});
		int64 freed = 0;
		UnlinkDeleted(index, ic.dimensions, info->strategy, &freed);
		stats->pages_deleted += freed;
		stats->pages_free += freed;
	}
	stats->tuples_removed += vs->removed;
	stats->num_index_tuples = vs->live;
	UpdateCounters(index, vs->live, vs->removed);

	UnlockPage(index, S5V_GRAPH_WRITE_LOCK, ExclusiveLock);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return stats;
}

IndexBulkDeleteResult *VacuumCleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats) {
	if (info->analyze_only)
		return stats;
	if (stats == nullptr) {
		// No bulk delete ran: count live elements for the statistics.
		stats = (IndexBulkDeleteResult *)palloc0(sizeof(IndexBulkDeleteResult));
		S5vMetaPageData meta;
		ReadMetaPage(info->index, &meta);
		stats->num_index_tuples = (double)meta.hot_elements;
	}
	stats->num_pages = RelationGetNumberOfBlocks(info->index);
	IndexFreeSpaceMapVacuum(info->index);
	return stats;
}

} // namespace s5v::pg
