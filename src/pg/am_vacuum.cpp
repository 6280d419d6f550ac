// VACUUM: mark elements of dead heap rows deleted, repair the neighbours that pointed to them (the core's
// RepairLocal / Repair), relink the targets of the deleted elements' links that lost their last live in-link, then
// remove the deleted elements so their space is reused through the free space map. Inserts and scans run beside
// it (the exclusive graph lock is taken only for instants). Counters on the metapage change in the same WAL record
// as the elements they count.
//
// Memory: the deleted ids (8 bytes each, sorted: membership is a binary search), the live elements with a link to
// a deleted one (12 bytes each), and a watch table of link targets bounded by half of maintenance_work_mem.
extern "C" {
#include "postgres.h"

#include "access/generic_xlog.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/bufmgr.h"
#include "storage/freespace.h"
#include "storage/indexfsm.h"
#include "storage/lmgr.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
}

#include "pg/am.h"
#include "pg/cold_store.h"
#include "pg/locks.h"
#include "pg/graph_load.h"
#include "pg/guard.h"
#include "pg/index.h"
#include "pg/page_iter.h"
#include "pg/page_store.h"

#include <vector>

namespace s5v::pg {

namespace {
// Vectors VACUUM's repairs keep in memory (PageGraphStore::EnableVectorCache): neighbour selection recomputes
// distances among the candidates a repair read. A quarter of maintenance_work_mem, at most 16 MB (the watch table
// takes up to half).
std::size_t RepairVectorCacheBytes() {
	return Min((std::size_t)maintenance_work_mem * 1024 / 4, (std::size_t)16 * 1024 * 1024);
}
} // namespace

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
	int64 cap = 1024;
	*ids = (uint64 *)palloc_extended(sizeof(uint64) * cap, MCXT_ALLOC_HUGE);
	// Hot pages, exclusively locked (the page iterator checks each page; cold pages are VACUUMed by following
	// their lists, ColdBulkDelete).
	S5vPageIter it;
	PageIterBegin(&it, index, S5V_PAGE_MASK(S5V_PAGE_HOT), BUFFER_LOCK_EXCLUSIVE, strategy, S5V_PAGE_ITER_VACUUM_DELAY);
	while (PageIterNext(&it)) {
		BlockNumber blk = it.blkno;
		Buffer buf = it.buf;
		Page page = it.page;
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
	}
	PageIterEnd(&it);
}

// The deleted ids, sorted: membership by binary search (no second copy of the set).
struct DeletedSet {
	const uint64 *ids;
	int64 n;
};

bool IsDeletedId(const DeletedSet &d, uint64 id) {
	int64 lo = 0, hi = d.n;
	while (lo < hi) {
		int64 mid = lo + (hi - lo) / 2;
		if (d.ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < d.n && d.ids[lo] == id;
}

int CompareIds(const void *a, const void *b) {
	uint64 x = *(const uint64 *)a, y = *(const uint64 *)b;
	return x < y ? -1 : (x > y ? 1 : 0);
}

// A target of a deleted element's out-link: the live in-links the scan saw, and its level (-1: not seen live).
// Those left without a live in-link are relinked before the removal.
struct WatchEntry {
	uint64 id; /* hash key */
	int32 in_links;
	int16 level;
};

// The watch table: a dynahash in the VACUUM's memory context, at most `cap` entries.
struct Watch {
	HTAB *table;
	int64 cap;
	bool truncated;
};

void WatchInit(Watch *w, int64 cap) {
	HASHCTL ctl;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(WatchEntry);
	ctl.hcxt = CurrentMemoryContext;
	w->table = hash_create("s5vector vacuum watch", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	w->cap = cap;
	w->truncated = false;
}

// fn(target) for each out-link of element `etup` (on block `blk`, held in `buf`), every level, in list order; its
// neighbour tuple may lie on another page (read and released here). `known` bounds the neighbour-list TID (re-read
// when a TID names a block past it). Stops early when fn returns false.
template <class F>
void ForEachOutLink(Relation index, Buffer buf, BlockNumber blk, S5vElementTuple etup, BufferAccessStrategy strategy,
                    BlockNumber *known, F &&fn) {
	CheckIndexBlock(index, ItemPointerGetBlockNumberNoCheck(&etup->neighbortid), known, "a neighbour-list TID");
	Buffer nbuf;
	S5vNeighborTuple ntup = NeighborTupleOf(index, buf, blk, etup, strategy, &nbuf, false);
	for (int k = 0; ntup != nullptr && k < ntup->count; k++) {
		ItemPointer t = &ntup->tids[k];
		if (!ItemPointerIsValid(t))
			continue;
		if (!fn(NodeIdFromTid(ItemPointerGetBlockNumberNoCheck(t), ItemPointerGetOffsetNumber(t))))
			break;
	}
	ReleaseNeighborPage(buf, nbuf);
}

// The out-links of the deleted elements `ids` (their targets lose an in-link when the elements go) go into the
// watch table, except targets that are deleted themselves.
// Not a pass over the index, so not through the page iterator: it reads only the blocks of `ids` (in block order,
// as MarkDeleted collected them), and `known` is the bound for checking neighbour TIDs, re-read when a TID names
// a block past it (a page added since), not a loop bound.
void CollectOutLinks(Relation index, uint32 dim, const DeletedSet &deleted, BufferAccessStrategy strategy,
                     Watch *watch) {
	const uint64 *ids = deleted.ids;
	int64 nids = deleted.n;
	BlockNumber known = RelationGetNumberOfBlocks(index);
	for (int64 i = 0; i < nids;) {
		vacuum_delay_point();
		BlockNumber blk = NodeBlock(ids[i]);
		Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, blk, RBM_NORMAL, strategy);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		Page page = BufferGetPage(buf);
		CheckPage(index, page, blk);
		for (; i < nids && NodeBlock(ids[i]) == blk; i++) {
			S5vElementTuple etup = GetElement(index, page, blk, NodeOffset(ids[i]), dim);
			if (etup == nullptr)
				continue;
			ForEachOutLink(index, buf, blk, etup, strategy, &known, [&](uint64 target) {
				if (IsDeletedId(deleted, target))
					return true;
				if (hash_get_num_entries(watch->table) >= watch->cap) {
					if (hash_search(watch->table, &target, HASH_FIND, nullptr) == nullptr)
						watch->truncated = true;
					return true;
				}
				bool found;
				WatchEntry *e = (WatchEntry *)hash_search(watch->table, &target, HASH_ENTER, &found);
				if (!found) {
					e->in_links = 0;
					e->level = -1;
				}
				return true;
			});
		}
		UnlockReleaseBuffer(buf);
	}
}

// The slots of the hot pages FindBrokenLinks read, as a dense numbering (base[blk] + off - 1), with one bit for
// the live elements it saw and one for those the reachability pass reaches. A few bits a slot and 4 bytes a block.
struct LiveMap {
	BlockNumber nblocks; // blocks the pass covered; later pages hold only newer elements
	uint32 *base;        // nblocks + 1 entries
	uint8 *live;
	uint8 *reached;
	Size live_bytes; // allocated size of live
	int64 slots;
	int64 nlive;
};

void LiveMapInit(LiveMap *m, BlockNumber nblocks) {
	m->nblocks = nblocks;
	m->base = (uint32 *)palloc_extended(sizeof(uint32) * ((Size)nblocks + 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	m->slots = 0;
	m->nlive = 0;
	m->live_bytes = 1024;
	m->live = (uint8 *)palloc0(m->live_bytes);
	m->reached = nullptr;
}

// Called for each hot page in block order with its line pointer count: fills base[] up to blk.
void LiveMapPage(LiveMap *m, BlockNumber blk, OffsetNumber maxoff, BlockNumber *filled) {
	for (BlockNumber b = *filled; b <= blk && b < m->nblocks; b++)
		m->base[b] = (uint32)m->slots;
	*filled = blk + 1;
	Size need = (Size)(m->slots + maxoff + 7) / 8;
	if (need > m->live_bytes) {
		Size size = need * 2;
		m->live = (uint8 *)repalloc_huge(m->live, size);
		memset(m->live + m->live_bytes, 0, size - m->live_bytes);
		m->live_bytes = size;
	}
	m->slots += maxoff;
}

void LiveMapFinish(LiveMap *m, BlockNumber filled) {
	for (BlockNumber b = filled; b <= m->nblocks; b++)
		m->base[b] = (uint32)m->slots;
	m->reached = (uint8 *)palloc_extended((Size)(m->slots + 8) / 8, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
}

// The dense slot of `id`, or -1 when the pass did not cover it (a page added since, or an offset past the page's
// line pointers then).
int64 LiveMapSlot(const LiveMap *m, uint64 id) {
	BlockNumber blk = NodeBlock(id);
	OffsetNumber off = NodeOffset(id);
	if (blk >= m->nblocks || off < FirstOffsetNumber)
		return -1;
	int64 slot = (int64)m->base[blk] + off - 1;
	return slot < (int64)m->base[blk + 1] ? slot : -1;
}

inline bool BitGet(const uint8 *bits, int64 i) {
	return (bits[i >> 3] >> (i & 7)) & 1;
}
inline void BitSet(uint8 *bits, int64 i) {
	bits[i >> 3] |= (uint8)(1 << (i & 7));
}

// Live elements that link to a deleted one, with their levels; and the live element of highest level.
void FindBrokenLinks(Relation index, uint32 dim, const DeletedSet &deleted, Watch *watch, BufferAccessStrategy strategy,
                     uint64 **out, int **levels, int64 *nout, uint64 *best_entry, int *best_level, LiveMap *map) {
	int64 cap = 1024;
	*out = (uint64 *)palloc_extended(sizeof(uint64) * cap, MCXT_ALLOC_HUGE);
	*levels = (int *)palloc_extended(sizeof(int) * cap, MCXT_ALLOC_HUGE);
	*best_entry = ~(uint64)0;
	*best_level = -1;
	S5vPageIter it;
	PageIterBegin(&it, index, S5V_PAGE_MASK(S5V_PAGE_HOT), BUFFER_LOCK_SHARE, strategy, S5V_PAGE_ITER_VACUUM_DELAY);
	BlockNumber known = it.nblocks; // for checking TIDs (may grow), not the loop bound
	LiveMapInit(map, it.nblocks);
	BlockNumber filled = 0;
	while (PageIterNext(&it)) {
		BlockNumber blk = it.blkno;
		Buffer buf = it.buf;
		Page page = it.page;
		OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
		if (blk < map->nblocks)
			LiveMapPage(map, blk, maxoff, &filled);
		for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++) {
			S5vElementTuple etup = GetElement(index, page, blk, off, dim);
			if (etup == nullptr || (etup->flags & S5V_ELEMENT_DELETED))
				continue;
			int64 slot = LiveMapSlot(map, NodeIdFromTid(blk, off));
			if (slot >= 0) {
				BitSet(map->live, slot);
				map->nlive++;
			}
			if (etup->level > *best_level) {
				*best_level = etup->level;
				*best_entry = NodeIdFromTid(blk, off);
			}
			uint64 self = NodeIdFromTid(blk, off);
			WatchEntry *we = (WatchEntry *)hash_search(watch->table, &self, HASH_FIND, nullptr);
			if (we != nullptr)
				we->level = (int16)etup->level;
			bool broken = false;
			ForEachOutLink(index, buf, blk, etup, strategy, &known, [&](uint64 target) {
				if (IsDeletedId(deleted, target)) {
					broken = true;
				} else {
					WatchEntry *te = (WatchEntry *)hash_search(watch->table, &target, HASH_FIND, nullptr);
					if (te != nullptr)
						te->in_links++;
				}
				return true;
			});
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
	}
	PageIterEnd(&it);
	LiveMapFinish(map, filled);
}

// The live elements that only deleted ones connect to the rest: a pass from the entry point that walks through live
// elements only (the graph as it will be once the deleted elements are removed). Fills *out with the elements
// FindBrokenLinks saw live that the pass did not reach. Elements added since are walked through (a small hash set
// marks them) but never reported. Returns false, having checked nothing, when the pass's queue (8 bytes an element)
// would pass `budget` bytes.
bool FindLiveOnlyUnreachable(Relation index, uint32 dim, const DeletedSet &deleted, LiveMap *map, uint64 entry,
                             BufferAccessStrategy strategy, Size budget, uint64 **out, int16 **out_levels,
                             int64 *nout) {
	*nout = 0;
	memset(map->reached, 0, (Size)(map->slots + 8) / 8);
	HASHCTL ctl;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(uint64);
	ctl.hcxt = CurrentMemoryContext;
	HTAB *newer = hash_create("s5vector vacuum reach", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	Size cap = 1024, n = 0;
	uint64 *stack = (uint64 *)palloc(sizeof(uint64) * cap);
	bool ok = true;
	BlockNumber known = RelationGetNumberOfBlocks(index);
	// Marks `id` reached; true when it was not yet.
	auto mark = [&](uint64 id) -> bool {
		int64 slot = LiveMapSlot(map, id);
		if (slot >= 0) {
			if (BitGet(map->reached, slot))
				return false;
			BitSet(map->reached, slot);
			return true;
		}
		bool found;
		hash_search(newer, &id, HASH_ENTER, &found);
		return !found;
	};
	CheckIndexBlock(index, NodeBlock(entry), &known, "the entry point");
	mark(entry);
	stack[n++] = entry;
	while (n > 0) {
		vacuum_delay_point();
		uint64 id = stack[--n];
		BlockNumber blk = NodeBlock(id);
		Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, blk, RBM_NORMAL, strategy);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		Page page = BufferGetPage(buf);
		CheckPage(index, page, blk);
		S5vElementTuple etup = GetElement(index, page, blk, NodeOffset(id), dim);
		if (etup == nullptr || (etup->flags & S5V_ELEMENT_DELETED)) {
			UnlockReleaseBuffer(buf);
			continue;
		}
		ForEachOutLink(index, buf, blk, etup, strategy, &known, [&](uint64 target) {
			CheckIndexBlock(index, NodeBlock(target), &known, "a neighbour TID");
			if (IsDeletedId(deleted, target) || !mark(target))
				return true;
			if (n == cap) {
				if (sizeof(uint64) * cap * 2 > budget) {
					ok = false;
					return false;
				}
				cap *= 2;
				stack = (uint64 *)repalloc_huge(stack, sizeof(uint64) * cap);
			}
			stack[n++] = target;
			return true;
		});
		UnlockReleaseBuffer(buf);
		if (!ok)
			break;
	}
	pfree(stack);
	if (!ok) {
		hash_destroy(newer);
		return false;
	}
	int64 ncap = 64;
	*out = (uint64 *)palloc(sizeof(uint64) * ncap);
	*out_levels = (int16 *)palloc(sizeof(int16) * ncap);
	// Appends an unreached live element (its id and level) to the output arrays.
	auto add_lost = [&](uint64 id, int level) {
		if (*nout == ncap) {
			ncap *= 2;
			*out = (uint64 *)repalloc_huge(*out, sizeof(uint64) * ncap);
			*out_levels = (int16 *)repalloc_huge(*out_levels, sizeof(int16) * ncap);
		}
		(*out_levels)[*nout] = (int16)level;
		(*out)[(*nout)++] = id;
	};
	for (BlockNumber b = 0; b < map->nblocks; b++)
		for (int64 slot = map->base[b]; slot < (int64)map->base[b + 1]; slot++) {
			if (!BitGet(map->live, slot) || BitGet(map->reached, slot))
				continue;
			// Its level, for the relink (and whether it is still the live element the map saw).
			OffsetNumber off = (OffsetNumber)(slot - map->base[b] + 1);
			Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, b, RBM_NORMAL, strategy);
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			Page page = BufferGetPage(buf);
			CheckPage(index, page, b);
			S5vElementTuple etup = GetElement(index, page, b, off, dim);
			int level = etup != nullptr && !(etup->flags & S5V_ELEMENT_DELETED) ? etup->level : -1;
			UnlockReleaseBuffer(buf);
			if (level < 0)
				continue;
			add_lost(NodeIdFromTid(b, off), level);
		}
	// Pages added since the pass that built the map hold only elements inserted during this VACUUM: the walk
	// reached them through `newer`; a live one it did not reach is unreachable too (an insert that linked only to
	// elements this VACUUM removes).
	BlockNumber now = RelationGetNumberOfBlocks(index);
	for (BlockNumber b = map->nblocks; b < now; b++) {
		vacuum_delay_point();
		Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, b, RBM_NORMAL, strategy);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		Page page = BufferGetPage(buf);
		if (PageIsNew(page)) {
			UnlockReleaseBuffer(buf);
			continue;
		}
		CheckPage(index, page, b);
		if (S5vPageGetOpaque(page)->page_type != S5V_PAGE_HOT) {
			UnlockReleaseBuffer(buf);
			continue;
		}
		OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
		for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++) {
			S5vElementTuple etup = GetElement(index, page, b, off, dim);
			if (etup == nullptr || (etup->flags & S5V_ELEMENT_DELETED))
				continue;
			uint64 id = NodeIdFromTid(b, off);
			bool found = false;
			hash_search(newer, &id, HASH_FIND, &found);
			if (found)
				continue;
			add_lost(id, etup->level);
		}
		UnlockReleaseBuffer(buf);
	}
	hash_destroy(newer);
	return true;
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
	// Neighbour tuples that live on another page than their element, removed after the element pages.
	int64 cap = 64, nfar = 0;
	ItemPointerData *far = (ItemPointerData *)palloc(sizeof(ItemPointerData) * cap);
	S5vPageIter it;
	PageIterBegin(&it, index, S5V_PAGE_MASK(S5V_PAGE_HOT), BUFFER_LOCK_SHARE, strategy, S5V_PAGE_ITER_VACUUM_DELAY);
	BlockNumber known = it.nblocks; // for checking TIDs (may grow), not the loop bound
	while (PageIterNext(&it)) {
		BlockNumber blk = it.blkno;
		Page page = it.page;
		// Offsets to remove, as a set: one slot per line pointer, whatever the tuples claim.
		bool remove[MaxOffsetNumber + 1];
		OffsetNumber offs[MaxOffsetNumber];
		int n = 0, elements = 0;
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
		// The share lock goes before RemoveTuples locks the page exclusively.
		PageIterRelease(&it);
		if (n > 0)
			RemoveTuples(index, blk, offs, n, elements, strategy, false);
	}
	PageIterEnd(&it);
	for (int64 i = 0; i < nfar; i++) {
		vacuum_delay_point();
		OffsetNumber off = ItemPointerGetOffsetNumber(&far[i]);
		RemoveTuples(index, ItemPointerGetBlockNumber(&far[i]), &off, 1, 0, strategy, true);
	}
}

// On each level <= `level` of `node`: drop the entries that are deleted, if what stays is at least 3/4 of the
// level's capacity (compare-and-set, retried when a concurrent insert changed the list). `dropped_all` is false
// when some level would keep less: the caller repairs that element with RepairLocal instead.
Status DropDeletedLinks(PageGraphStore &store, uint64 node, int level, int m, const DeletedSet &deleted,
                        std::vector<hnsw::NodeId> &links, std::vector<hnsw::NodeId> &kept, bool &dropped_all) {
	dropped_all = true;
	for (int l = 0; l <= level; l++) {
		const std::size_t cap = (std::size_t)(l == 0 ? 2 * m : m);
		for (int attempt = 0;; attempt++) {
			S5V_RETURN_IF_ERROR(store.Neighbors(node, l, links));
			kept.clear();
			for (hnsw::NodeId x : links)
				if (!IsDeletedId(deleted, x))
					kept.push_back(x);
			if (kept.size() == links.size())
				break;
			if (kept.size() * 4 < cap * 3 || attempt >= 8) {
				dropped_all = false;
				return Status::Ok();
			}
			bool applied = false;
			S5V_RETURN_IF_ERROR(store.CompareAndSetNeighbors(node, l, links, kept, applied));
			if (applied)
				break;
		}
	}
	return Status::Ok();
}

// Wait for every insert in flight (they may have chosen an element just marked deleted as a neighbour); inserts
// that start later see it deleted and never link to it. Holds the exclusive graph lock only for that instant.
void WaitForInserts(Relation index) {
	LockPage(index, S5V_GRAPH_WRITE_LOCK, ExclusiveLock);
	UnlockPage(index, S5V_GRAPH_WRITE_LOCK, ExclusiveLock);
}

// A deleted entry point is replaced by the live element of highest level, under the exclusive graph lock (an insert
// that raises the entry point holds it too), briefly.
void ReplaceDeletedEntryPoint(Relation index, const IndexInfoCache &ic, const DeletedSet &deleted, uint64 best_entry,
                              int best_level) {
	LockPage(index, S5V_GRAPH_WRITE_LOCK, ExclusiveLock);
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	uint64 entry =
	    meta.entry_blkno == InvalidBlockNumber ? ~(uint64)0 : NodeIdFromTid(meta.entry_blkno, meta.entry_offno);
	if (entry != ~(uint64)0 && IsDeletedId(deleted, entry)) {
		Guarded([&]() -> Status {
			PageGraphStore store(index, ic);
			return store.SetEntryPoint(best_level < 0 ? hnsw::kNoNode : best_entry, best_level);
		});
	}
	UnlockPage(index, S5V_GRAPH_WRITE_LOCK, ExclusiveLock);
}

// VACUUM's loops over elements that change the graph: one page store session (with the repair vector cache, reset
// for each element), vacuum_delay_point() and the cancel check before each of the n calls of
// fn(store, cancel, scratch, k). Scratch (vectors reused across calls) lives inside the guarded frame.
struct RepairScratch {
	std::vector<float> vec;
	std::vector<hnsw::NodeId> links, kept;
};

template <class F> void ForEachRepair(Relation index, const IndexInfoCache &ic, int64 n, F &&fn) {
	Guarded([&]() -> Status {
		PageGraphStore store(index, ic);
		store.EnableVectorCache(RepairVectorCacheBytes());
		InterruptToken cancel;
		RepairScratch scratch;
		for (int64 k = 0; k < n; k++) {
			store.ResetVectorCache();
			Status st;
			S5V_PG_CALL(st, vacuum_delay_point());
			S5V_RETURN_IF_ERROR(st);
			if (cancel.cancelled())
				return Status::Cancelled();
			S5V_RETURN_IF_ERROR(fn(store, cancel, scratch, k));
		}
		return Status::Ok();
	});
}

// Relink (hnsw::Relink: back-links from the elements a search finds) each of `n` live elements with its level.
// Returns how many were relinked.
int64 RelinkElements(Relation index, const IndexInfoCache &ic, const hnsw::Params &params, const uint64 *ids,
                     const int16 *levels, int64 n) {
	int64 done = 0;
	ForEachRepair(
	    index, ic, n, [&](PageGraphStore &store, const CancelToken &cancel, RepairScratch &sc, int64 k) -> Status {
		    S5V_RETURN_IF_ERROR(store.Vector(ids[k], sc.vec));
		    S5V_RETURN_IF_ERROR(hnsw::Relink(store, ids[k], levels[k], sc.vec.data(), ic.dimensions, params, cancel));
		    done++;
		    return Status::Ok();
	    });
	return done;
}

} // namespace

// Former whole-graph reconnection (load every element, find the unreachable ones, repair them): no routine path
// calls it any more; kept for a manual repair tool.
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
			store.EnableVectorCache(RepairVectorCacheBytes());
			InterruptToken cancel;
			hnsw::Params params{ic.m, Min(2 * ic.ef_construction, S5V_MAX_EF_CONSTRUCTION)};
			if (round == rounds - 1)
				return hnsw::ForceLinks(store, params, csr.offsets, csr.targets, csr.ids, csr.entry_index, lost);
			std::vector<float> vec;
			for (uint32_t i : lost) {
				store.ResetVectorCache();
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

// VACUUM runs beside inserts: it takes the exclusive graph lock only for an instant (to wait out inserts in
// flight, and to replace a deleted entry point); every list it changes is an atomic read-modify-write like an
// insert's. Work is proportional to what was deleted: the pages are scanned (to find dead rows and the lists
// that point to them), the elements with a deleted neighbour are repaired, and the targets of the deleted
// elements' links that are left without a live in-link are relinked; nothing loads the whole graph.
IndexBulkDeleteResult *BulkDelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats, IndexBulkDeleteCallback callback,
                                  void *callback_state) {
	Relation index = info->index;
	if (stats == nullptr)
		stats = (IndexBulkDeleteResult *)palloc0(sizeof(IndexBulkDeleteResult));
	IndexInfoCache ic = GetIndexInfo(index);

	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "s5vector vacuum", ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	uint64 *ids;
	int64 nids = 0, live = 0, removed = 0;
	LockHotRemoval(index); // one hot removal pass at a time (locks.h), before any other lock of this pass
	MarkDeleted(index, ic.dimensions, callback, callback_state, info->strategy, &ids, &nids, &live, &removed);

	if (nids > 0) {
		WaitForInserts(index);
		// Sorted for the binary search (MarkDeleted collects in block order already; CollectOutLinks needs it).
		bool sorted = true;
		for (int64 i = 1; i < nids && sorted; i++)
			sorted = ids[i - 1] < ids[i];
		if (!sorted)
			qsort(ids, nids, sizeof(uint64), CompareIds);
		DeletedSet deleted{ids, nids};
		// The watch table gets half of maintenance_work_mem (about 48 bytes an entry with dynahash's overhead).
		Watch watch;
		WatchInit(&watch, Max((int64)1024, (int64)maintenance_work_mem * 1024 / 2 / 48));
		CollectOutLinks(index, ic.dimensions, deleted, info->strategy, &watch);
		if (watch.truncated)
			ereport(DEBUG1, (errmsg("s5vector: VACUUM of \"%s\" checks the in-links of %lld elements only "
			                        "(maintenance_work_mem)",
			                        RelationGetRelationName(index), (long long)watch.cap)));
		uint64 *broken;
		int *levels;
		int64 nbroken = 0;
		uint64 best_entry;
		int best_level;
		LiveMap map;
		FindBrokenLinks(index, ic.dimensions, deleted, &watch, info->strategy, &broken, &levels, &nbroken, &best_entry,
		                &best_level, &map);

		// The entry point must be live before anything searches from it.
		ReplaceDeletedEntryPoint(index, ic, deleted, best_entry, best_level);

		// Repairs that need a search use twice ef_construction (recall on the survivors of a half-deleted index:
		// 0.85 -> 0.93).
		hnsw::Params params{ic.m, Min(2 * ic.ef_construction, S5V_MAX_EF_CONSTRUCTION)};
		int64 searched = 0, dropped = 0;
		ForEachRepair(index, ic, nbroken,
		              [&](PageGraphStore &store, const CancelToken &cancel, RepairScratch &sc, int64 i) -> Status {
			              // Cheapest first: a list that keeps at least 3/4 of its capacity once its deleted entries
			              // are dropped just drops them (one neighbour tuple read and written, no vector read: with a
			              // few per cent deleted that is nearly every list). Otherwise the deleted neighbours' own
			              // neighbours replace them (RepairLocal, no search), and a search only for a list that
			              // stayed less than half full.
			              bool dropped_all = true;
			              S5V_RETURN_IF_ERROR(DropDeletedLinks(store, broken[i], levels[i], ic.m, deleted, sc.links,
			                                                   sc.kept, dropped_all));
			              if (dropped_all) {
				              dropped++;
				              return Status::Ok();
			              }
			              S5V_RETURN_IF_ERROR(store.Vector(broken[i], sc.vec));
			              bool sparse = false;
			              S5V_RETURN_IF_ERROR(hnsw::RepairLocal(store, broken[i], levels[i], sc.vec.data(),
			                                                    ic.dimensions, params, sparse));
			              if (sparse) {
				              searched++;
				              S5V_RETURN_IF_ERROR(hnsw::Repair(store, broken[i], levels[i], sc.vec.data(),
				                                               ic.dimensions, params, cancel));
			              }
			              return Status::Ok();
		              });

		// Reconnection, incremental: the targets of the deleted elements' links that no live element linked to.
		// It runs before the removal: until then searches still walk through the deleted elements, so a VACUUM
		// cancelled at any point leaves every element reachable, and the next VACUUM (which finds the elements
		// still marked) does the work again.
		S5vMetaPageData meta;
		ReadMetaPage(index, &meta);
		uint64 entry =
		    meta.entry_blkno == InvalidBlockNumber ? ~(uint64)0 : NodeIdFromTid(meta.entry_blkno, meta.entry_offno);
		// The orphans, collected from the watch table first (no PostgreSQL call inside the C++ loop but the store's).
		int64 norphans = 0;
		uint64 *orphans =
		    (uint64 *)palloc_extended(sizeof(uint64) * Max(hash_get_num_entries(watch.table), 1), MCXT_ALLOC_HUGE);
		int16 *orphan_levels =
		    (int16 *)palloc_extended(sizeof(int16) * Max(hash_get_num_entries(watch.table), 1), MCXT_ALLOC_HUGE);
		{
			HASH_SEQ_STATUS seq;
			hash_seq_init(&seq, watch.table);
			WatchEntry *e;
			while ((e = (WatchEntry *)hash_seq_search(&seq)) != nullptr) {
				if (e->in_links > 0 || e->level < 0 || e->id == entry)
					continue;
				orphan_levels[norphans] = e->level;
				orphans[norphans++] = e->id;
			}
		}
		int64 relinked = RelinkElements(index, ic, params, orphans, orphan_levels, norphans);
		// The in-link counts above miss what they cannot see: a live element whose live in-links come only from
		// elements that are themselves reachable only through deleted ones, an in-link a repair dropped, a relink
		// that found no room, or the work of an earlier VACUUM cancelled between its repairs and its relinks.
		// So before anything is removed, a pass from the entry point over live elements only checks what the
		// graph will be; those it does not reach are relinked (a few rounds), and if some stay unreachable the
		// deleted elements are kept (searches still pass through them) for the next VACUUM to try again.
		int64 unreached = 0, reconnected = 0;
		bool checked = true;
		instr_time check_start, check_time;
		INSTR_TIME_SET_CURRENT(check_start);
		const Size reach_budget = (Size)maintenance_work_mem * 1024 / 4;
		for (int round = 0; round < 3; round++) {
			ReadMetaPage(index, &meta);
			if (meta.entry_blkno == InvalidBlockNumber)
				break;
			entry = NodeIdFromTid(meta.entry_blkno, meta.entry_offno);
			uint64 *lost = nullptr;
			int16 *lost_levels = nullptr;
			int64 nlost = 0;
			if (!FindLiveOnlyUnreachable(index, ic.dimensions, deleted, &map, entry, info->strategy, reach_budget,
			                             &lost, &lost_levels, &nlost)) {
				checked = false;
				break;
			}
			unreached = nlost;
			if (nlost == 0 || round == 2)
				break;
			reconnected += RelinkElements(index, ic, params, lost, lost_levels, nlost);
			pfree(lost);
			pfree(lost_levels);
		}
		INSTR_TIME_SET_CURRENT(check_time);
		INSTR_TIME_SUBTRACT(check_time, check_start);
		if (!checked)
			ereport(DEBUG1, (errmsg("s5vector: VACUUM of \"%s\" skips the reachability check (maintenance_work_mem)",
			                        RelationGetRelationName(index))));
		if (unreached > 0) {
			ereport(LOG, (errmsg("s5vector: VACUUM of \"%s\" keeps its %lld deleted elements for now: %lld live "
			                     "elements are reachable only through them",
			                     RelationGetRelationName(index), (long long)nids, (long long)unreached),
			              errhint("The next VACUUM tries again.")));
		} else {
			RemoveDeleted(index, ic.dimensions, info->strategy);
		}
		ereport(DEBUG1, (errmsg("s5vector: VACUUM of \"%s\": %lld elements removed, %lld repaired (%lld by dropping "
		                        "the deleted links, %lld with a search), %lld relinked, %lld reconnected after the "
		                        "reachability check (%.1f ms)",
		                        RelationGetRelationName(index), unreached > 0 ? 0LL : (long long)nids,
		                        (long long)nbroken, (long long)dropped, (long long)searched, (long long)relinked,
		                        (long long)reconnected, INSTR_TIME_GET_MILLISEC(check_time))));
	}
	UnlockHotRemoval(index);
	stats->tuples_removed += removed;
	stats->num_index_tuples = live;
	// Cold tier hook: dead heap TIDs of the cold lists are marked dead (cold_vacuum.cpp).
	int64 cold_removed = 0, cold_live = 0;
	if (!cold_vacuum_suppressed) // s5vector_migrate removes rows it has just made cold
		ColdBulkDelete(index, ic.dimensions, callback, callback_state, info->strategy, &cold_removed, &cold_live);
	stats->tuples_removed += cold_removed;
	stats->num_index_tuples += cold_live;

	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return stats;
}

IndexBulkDeleteResult *VacuumCleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats) {
	if (info->analyze_only)
		return stats;
	if (stats == nullptr) {
		// No bulk delete ran (no dead rows): nothing to repair; inserts keep the graph connected themselves, so
		// no page of the graph is read here.
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
