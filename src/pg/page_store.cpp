// hnsw::MutableGraphStore over index pages (see page_store.h).
extern "C" {
#include "postgres.h"

#include "access/generic_xlog.h"
#include "access/htup_details.h"
#include "pgstat.h"
#include "storage/buf_internals.h"
#include "storage/bufmgr.h"
#include "storage/freespace.h"
#include "storage/indexfsm.h"
#include "utils/float.h"
#include "utils/memutils.h"
#include "storage/lmgr.h"
#include "utils/rel.h"
}

#include "pg/cold_pages.h"
#include "pg/guard.h"
#include "pg/page_store.h"

#include <algorithm>
#include <cmath>

namespace s5v::pg {

using hnsw::NodeId;

void CheckIndexBlock(Relation index, BlockNumber blk, BlockNumber *nblocks, const char *what) {
	if (likely(blk != S5V_METAPAGE_BLKNO && blk < *nblocks))
		return;
	if (blk != S5V_METAPAGE_BLKNO && blk != InvalidBlockNumber) {
		*nblocks = RelationGetNumberOfBlocks(index); // the index may have grown since the size was cached
		if (blk < *nblocks)
			return;
	}
	ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
	                errmsg("index \"%s\" contains %s pointing to block %u, which is not one of its data pages",
	                       RelationGetRelationName(index), what, blk),
	                errhint("Please REINDEX it.")));
}

void CheckHeapTid(Relation index, const ItemPointerData *tid, BlockNumber *heap_nblocks) {
	BlockNumber blk = ItemPointerGetBlockNumberNoCheck(tid);
	OffsetNumber off = ItemPointerGetOffsetNumberNoCheck(tid);
	bool off_ok = off >= FirstOffsetNumber && off <= MaxHeapTuplesPerPage;
	if (likely(off_ok && blk < *heap_nblocks))
		return;
	Relation heap = RelationIdGetRelation(index->rd_index->indrelid);
	const char *heapname = heap != nullptr ? pstrdup(RelationGetRelationName(heap)) : "?";
	if (off_ok && blk != InvalidBlockNumber && heap != nullptr)
		*heap_nblocks = RelationGetNumberOfBlocks(heap); // the table may have grown since the size was cached
	if (heap != nullptr)
		RelationClose(heap);
	if (off_ok && blk < *heap_nblocks)
		return;
	ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
	                errmsg("index \"%s\" contains heap TID (%u,%u), which is outside table \"%s\"",
	                       RelationGetRelationName(index), blk, (unsigned)off, heapname),
	                errhint("Please REINDEX it.")));
}

namespace {

// The checks' fast paths, inlined into the search loop (the slow paths re-read the sizes or raise).
inline void CheckBlockFast(Relation index, BlockNumber blk, BlockNumber *nblocks, const char *what) {
	if (likely(blk != S5V_METAPAGE_BLKNO && blk < *nblocks))
		return;
	CheckIndexBlock(index, blk, nblocks, what);
}
inline void CheckHeapTidFast(Relation index, const ItemPointerData *tid, BlockNumber *heap_nblocks) {
	OffsetNumber off = ItemPointerGetOffsetNumberNoCheck(tid);
	if (likely(off >= FirstOffsetNumber && off <= MaxHeapTuplesPerPage &&
	           ItemPointerGetBlockNumberNoCheck(tid) < *heap_nblocks))
		return;
	CheckHeapTid(index, tid, heap_nblocks);
}

// Buffer hints: which shared buffer last held each block of an index, remembered per backend, so that a search
// pins a page with ReadRecentBuffer (which checks that the buffer still holds that block, and pins it) instead
// of ReadBuffer's buffer-mapping lookup (a shared hash table and its partition lock: a quarter of a search's
// time, per perf). A wrong or stale hint costs only the fallback to ReadBuffer: it never gives a wrong page.
// One direct-mapped table per recently used index (by relfilenode), 8 bytes per slot, a slot per block up to
// kMaxHintSlots (larger indexes share slots); allocated once per backend and index in TopMemoryContext.
struct HintSlot {
	BlockNumber blk;
	Buffer buf;
};
struct BufferHints {
	RelFileNode node;
	uint32 mask = 0; // slots - 1; 0 = unused
	HintSlot *slots = nullptr;
};
constexpr int kHintTables = 4;
constexpr uint32 kMaxHintSlots = 1u << 18; // 2 MiB of hints for indexes of 2 GiB and more
BufferHints hint_tables[kHintTables];
int hint_next = 0;

// The hint table of `index`, made or enlarged to its current size; NULL for indexes in local buffers (temporary
// tables), which keep ReadBuffer. May ereport (out of memory): called inside S5V_PG_CALL.
BufferHints *HintsFor(Relation index, BlockNumber nblocks) {
	if (RelationUsesLocalBuffers(index))
		return nullptr;
	BufferHints *h = nullptr;
	for (BufferHints &t : hint_tables)
		if (t.mask != 0 && RelFileNodeEquals(t.node, index->rd_node))
			h = &t;
	if (h != nullptr && (h->mask + 1 >= nblocks || h->mask + 1 >= kMaxHintSlots))
		return h;
	uint32 want = 1024;
	while (want < nblocks && want < kMaxHintSlots)
		want <<= 1;
	if (h == nullptr) {
		h = &hint_tables[hint_next];
		hint_next = (hint_next + 1) % kHintTables;
	}
	HintSlot *slots = (HintSlot *)MemoryContextAllocHuge(TopMemoryContext, sizeof(HintSlot) * want);
	for (uint32 i = 0; i < want; i++)
		slots[i] = {InvalidBlockNumber, InvalidBuffer};
	if (h->slots != nullptr)
		pfree(h->slots);
	h->slots = slots;
	h->mask = want - 1;
	h->node = index->rd_node;
	return h;
}

// ReadBuffer of `blk` (already checked to be a data page), through the hint when it is still right.
inline Buffer ReadHinted(Relation index, BufferHints *h, BlockNumber blk) {
	if (h == nullptr)
		return ReadBuffer(index, blk);
	HintSlot &slot = h->slots[blk & h->mask];
	if (slot.blk == blk && ReadRecentBuffer(index->rd_node, MAIN_FORKNUM, blk, slot.buf)) {
		pgstat_count_buffer_read(index); // ReadBuffer counts these for pg_statio_*; ReadRecentBuffer does not
		pgstat_count_buffer_hit(index);
		return slot.buf;
	}
	Buffer buf = ReadBuffer(index, blk);
	slot.blk = blk;
	slot.buf = buf;
	return buf;
}

// Prefetching a batch of elements before reading them, in stages so that the cache misses of the whole batch
// overlap instead of coming one after another (each stage's loads were started by the one before): the hint
// slots, then each hinted buffer's descriptor, page header and line pointer, then (through the line pointer, read
// without the page lock: only an address to prefetch, kept inside the page, never data that is used) the first
// lines of each tuple. The memory is the buffer pool's, valid whatever the buffer holds by now.
constexpr size_t kPrefetchWindow = 16;    // elements whose loads are in flight at once
constexpr uint32 kPrefetchTupleLines = 8; // cache lines of each tuple (a 128-d element; larger ones partly)

struct PrefetchPlan {
	const char *page[kPrefetchWindow]; // the hinted buffer's page, or NULL
};

inline void PrefetchElements(const BufferHints *h, const NodeId *nodes, size_t n, uint32 tuple_bytes,
                             PrefetchPlan *plan) {
	if (h == nullptr)
		return;
	for (size_t i = 0; i < n; i++)
		__builtin_prefetch(&h->slots[NodeBlock(nodes[i]) & h->mask]);
	for (size_t i = 0; i < n; i++) {
		BlockNumber blk = NodeBlock(nodes[i]);
		const HintSlot &slot = h->slots[blk & h->mask];
		plan->page[i] = nullptr;
		if (slot.blk != blk || slot.buf <= 0)
			continue;
		__builtin_prefetch(GetBufferDescriptor(slot.buf - 1));
		const char *page = (const char *)BufferGetBlock(slot.buf);
		plan->page[i] = page;
		__builtin_prefetch(page);
		__builtin_prefetch(page + offsetof(PageHeaderData, pd_linp) + sizeof(ItemIdData) * (NodeOffset(nodes[i]) - 1));
		__builtin_prefetch(page + BLCKSZ - MAXALIGN(sizeof(S5vPageOpaqueData))); // the page type, checked first
	}
	for (size_t i = 0; i < n; i++) {
		const char *page = plan->page[i];
		OffsetNumber off = NodeOffset(nodes[i]);
		if (page == nullptr || off < FirstOffsetNumber)
			continue;
		const volatile ItemIdData *lp =
		    (const volatile ItemIdData *)(page + offsetof(PageHeaderData, pd_linp)) + (off - 1);
		uint32 lp_off = lp->lp_off;
		if (lp_off < SizeOfPageHeaderData || lp_off >= BLCKSZ)
			continue;
		uint32 end = std::min<uint32>({BLCKSZ, lp_off + tuple_bytes, lp_off + 64 * kPrefetchTupleLines});
		for (uint32 a = lp_off; a < end; a += 64)
			__builtin_prefetch(page + a);
	}
}

// Plain-C helpers: they may ereport, and are only called inside S5V_PG_CALL. `nblocks` is the store's cached
// size of the index: every TID read from a page is checked against it before it is read.

using ElementRef = PageGraphStore::NodeMeta;

void ReadElementRef(Relation index, BlockNumber *nblocks, NodeId node, ElementRef *ref, float *vec_out, uint32 dim) {
	CheckIndexBlock(index, NodeBlock(node), nblocks, "a link");
	Buffer buf = ReadBuffer(index, NodeBlock(node));
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	Page page = BufferGetPage(buf);
	CheckPageHeader(index, page, NodeBlock(node));
	S5vElementTuple etup = GetElement(index, page, NodeBlock(node), NodeOffset(node), dim);
	ref->valid = etup != nullptr;
	if (etup != nullptr) {
		ref->heaptid = etup->heaptid;
		ref->neighbortid = etup->neighbortid;
		ref->level = etup->level;
		ref->flags = etup->flags;
		ref->age = etup->age;
		if (vec_out != nullptr)
			memcpy(vec_out, etup->x, sizeof(float) * dim);
	}
	UnlockReleaseBuffer(buf);
}

// A distance that is not finite: legitimate for huge finite components (overflow), corruption when the stored
// vector holds a NaN or an infinity (the vector type refuses both on input). Only reached in that rare case.
void CheckStoredVector(Relation index, BlockNumber blk, OffsetNumber off, const float *x, uint32 dim) {
	for (uint32 j = 0; j < dim; j++)
		if (isnan(x[j]) || isinf(x[j]))
			ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
			                errmsg("index \"%s\" contains a corrupted tuple at (%u,%u): vector component %u is not "
			                       "finite",
			                       RelationGetRelationName(index), blk, off, j),
			                errhint("Please REINDEX it.")));
}

void ComputeDistances(Relation index, BlockNumber *nblocks, BlockNumber *heap_nblocks, s5v::Metric metric, uint32 dim,
                      const AgeFilter *filter, const float *query, const NodeId *nodes, size_t n, float *out,
                      uint8 *pass, ElementRef *refs, float *vecs) {
	Buffer buf = InvalidBuffer;
	BlockNumber cur = InvalidBlockNumber;
	Page page = nullptr;
	// The elements are on pages all over the buffer pool: the time goes into cache misses. Start a window of them
	// at a time.
	BufferHints *hints = HintsFor(index, *nblocks);
	PrefetchPlan plan;
	for (size_t i = 0; i < n; i++) {
		BlockNumber blk = NodeBlock(nodes[i]);
		if (i % kPrefetchWindow == 0)
			PrefetchElements(hints, nodes + i, std::min(kPrefetchWindow, n - i), (uint32)S5V_ELEMENT_SIZE(dim), &plan);
		if (blk != cur || page == nullptr) {
			if (BufferIsValid(buf))
				UnlockReleaseBuffer(buf);
			buf = InvalidBuffer;
			CheckBlockFast(index, blk, nblocks, "a link");
			buf = ReadHinted(index, hints, blk);
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);
			CheckPageHeader(index, page, blk);
			cur = blk;
		}
		S5vElementTuple etup = GetElement(index, page, blk, NodeOffset(nodes[i]), dim);
		if (etup == nullptr) {
			out[i] = get_float4_infinity();
			if (pass)
				pass[i] = 0;
			refs[i].valid = false;
			continue;
		}
		out[i] = s5v::IndexDistance(metric, query, etup->x, dim);
		if (unlikely(isnan(out[i]) || isinf(out[i])))
			CheckStoredVector(index, blk, NodeOffset(nodes[i]), etup->x, dim);
		refs[i].valid = true;
		refs[i].heaptid = etup->heaptid;
		refs[i].neighbortid = etup->neighbortid;
		refs[i].level = etup->level;
		refs[i].flags = etup->flags;
		refs[i].age = etup->age;
		refs[i].tid_checked = false;
		if (pass) {
			pass[i] = !(etup->flags & S5V_ELEMENT_DELETED) && filter->Matches(etup->age, etup->flags);
			// A returnable element's heap TID goes to the executor: it must lie inside the table.
			if (pass[i]) {
				CheckHeapTidFast(index, &etup->heaptid, heap_nblocks);
				refs[i].tid_checked = true;
			}
		}
		if (vecs != nullptr)
			memcpy(vecs + i * dim, etup->x, sizeof(float) * dim);
	}
	if (BufferIsValid(buf))
		UnlockReleaseBuffer(buf);
}

// Copy the level's slots of a neighbour tuple into `out` (capacity `cap`); returns the count.
int ReadNeighborSlots(Relation index, BlockNumber *nblocks, ItemPointer ntid, int m, int level, NodeId *out, int cap) {
	CheckIndexBlock(index, ItemPointerGetBlockNumberNoCheck(ntid), nblocks, "a neighbour-list TID");
	Buffer buf = ReadHinted(index, HintsFor(index, *nblocks), ItemPointerGetBlockNumber(ntid));
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	Page page = BufferGetPage(buf);
	CheckPageHeader(index, page, ItemPointerGetBlockNumber(ntid));
	OffsetNumber off = ItemPointerGetOffsetNumber(ntid);
	int n = 0;
	{
		S5vNeighborTuple ntup = GetNeighborTuple(index, page, ItemPointerGetBlockNumber(ntid), off);
		if (ntup != nullptr) {
			int start = level == 0 ? 0 : 2 * m + (level - 1) * m;
			int len = level == 0 ? 2 * m : m;
			if (start + len <= ntup->count) {
				for (int i = 0; i < len && n < cap; i++) {
					ItemPointer t = &ntup->tids[start + i];
					if (ItemPointerIsValid(t))
						out[n++] = NodeIdFromTid(ItemPointerGetBlockNumber(t), ItemPointerGetOffsetNumber(t));
				}
			}
		}
	}
	UnlockReleaseBuffer(buf);
	return n;
}

void WriteNeighborSlots(Relation index, BlockNumber *nblocks, ItemPointer ntid, int m, int level, const NodeId *nodes,
                        int n) {
	CheckIndexBlock(index, ItemPointerGetBlockNumberNoCheck(ntid), nblocks, "a neighbour-list TID");
	Buffer buf = ReadBuffer(index, ItemPointerGetBlockNumber(ntid));
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	GenericXLogState *state = GenericXLogStart(index);
	Page page = GenericXLogRegisterBuffer(state, buf, 0);
	OffsetNumber off = ItemPointerGetOffsetNumber(ntid);
	CheckPage(index, page, ItemPointerGetBlockNumber(ntid));
	S5vNeighborTuple ntup = GetNeighborTuple(index, page, ItemPointerGetBlockNumber(ntid), off);
	int start = level == 0 ? 0 : 2 * m + (level - 1) * m;
	int len = level == 0 ? 2 * m : m;
	if (ntup == nullptr || ntup->type != S5V_TUPLE_NEIGHBORS || start + len > ntup->count) {
		GenericXLogAbort(state);
		UnlockReleaseBuffer(buf);
		ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
		                errmsg("index \"%s\" has a missing neighbour tuple at (%u,%u)", RelationGetRelationName(index),
		                       ItemPointerGetBlockNumber(ntid), off),
		                errhint("Please REINDEX it.")));
	}
	for (int i = 0; i < len; i++) {
		if (i < n)
			ItemPointerSet(&ntup->tids[start + i], NodeBlock(nodes[i]), NodeOffset(nodes[i]));
		else
			ItemPointerSetInvalid(&ntup->tids[start + i]);
	}
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
}

// Compare-and-set of one level's slots under the page's exclusive lock (the atomic read-modify-write of
// back-links: two writers never lose each other's links). *applied tells whether the list still was `expected`.
void CasNeighborSlots(Relation index, BlockNumber *nblocks, ItemPointer ntid, int m, int level, const NodeId *expected,
                      int nexp, const NodeId *desired, int ndes, bool *applied) {
	*applied = false;
	CheckIndexBlock(index, ItemPointerGetBlockNumberNoCheck(ntid), nblocks, "a neighbour-list TID");
	Buffer buf = ReadBuffer(index, ItemPointerGetBlockNumber(ntid));
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	Page page = BufferGetPage(buf);
	OffsetNumber off = ItemPointerGetOffsetNumber(ntid);
	CheckPage(index, page, ItemPointerGetBlockNumber(ntid));
	S5vNeighborTuple ntup = GetNeighborTuple(index, page, ItemPointerGetBlockNumber(ntid), off);
	int start = level == 0 ? 0 : 2 * m + (level - 1) * m;
	int len = level == 0 ? 2 * m : m;
	if (ntup == nullptr || start + len > ntup->count || ndes > len) {
		UnlockReleaseBuffer(buf);
		ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
		                errmsg("index \"%s\" has a missing neighbour tuple at (%u,%u)", RelationGetRelationName(index),
		                       ItemPointerGetBlockNumber(ntid), off),
		                errhint("Please REINDEX it.")));
	}
	// The valid slots, in order, must be `expected`.
	int k = 0;
	bool same = true;
	for (int i = 0; i < len && same; i++) {
		ItemPointer t = &ntup->tids[start + i];
		if (!ItemPointerIsValid(t))
			continue;
		same = k < nexp && expected[k] == NodeIdFromTid(ItemPointerGetBlockNumber(t), ItemPointerGetOffsetNumber(t));
		k++;
	}
	if (!same || k != nexp) {
		UnlockReleaseBuffer(buf);
		return;
	}
	GenericXLogState *state = GenericXLogStart(index);
	Page wpage = GenericXLogRegisterBuffer(state, buf, 0);
	S5vNeighborTuple wtup = (S5vNeighborTuple)PageGetItem(wpage, PageGetItemId(wpage, off));
	for (int i = 0; i < len; i++) {
		if (i < ndes)
			ItemPointerSet(&wtup->tids[start + i], NodeBlock(desired[i]), NodeOffset(desired[i]));
		else
			ItemPointerSetInvalid(&wtup->tids[start + i]);
	}
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
	*applied = true;
}

void WriteEntryPoint(Relation index, NodeId node, int level) {
	Buffer buf = ReadBuffer(index, S5V_METAPAGE_BLKNO);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	GenericXLogState *state = GenericXLogStart(index);
	Page page = GenericXLogRegisterBuffer(state, buf, 0);
	S5vMetaPage meta = S5vPageGetMeta(page);
	if (node == hnsw::kNoNode) {
		meta->entry_blkno = InvalidBlockNumber;
		meta->entry_offno = InvalidOffsetNumber;
		meta->entry_level = -1;
	} else {
		meta->entry_blkno = NodeBlock(node);
		meta->entry_offno = NodeOffset(node);
		meta->entry_level = (int16)level;
	}
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
}

void ReadEntryPoint(Relation index, BlockNumber *nblocks, NodeId *node, int *level) {
	Buffer buf = ReadBuffer(index, S5V_METAPAGE_BLKNO);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	S5vMetaPage meta = S5vPageGetMeta(BufferGetPage(buf));
	BlockNumber blk = meta->entry_blkno;
	OffsetNumber off = meta->entry_offno;
	int lvl = meta->entry_level;
	UnlockReleaseBuffer(buf);
	if (blk == InvalidBlockNumber) {
		*node = hnsw::kNoNode;
		*level = -1;
		return;
	}
	CheckIndexBlock(index, blk, nblocks, "an entry point");
	if (lvl < 0 || lvl > hnsw::kMaxLevel)
		ereport(ERROR,
		        (errcode(ERRCODE_INDEX_CORRUPTED),
		         errmsg("index \"%s\" has an entry point of impossible level %d", RelationGetRelationName(index), lvl),
		         errhint("Please REINDEX it.")));
	*node = NodeIdFromTid(blk, off);
	*level = lvl;
}

// A new page at the end of the index, locked exclusively.
Buffer ExtendIndex(Relation index) {
	LockRelationForExtension(index, ExclusiveLock);
	Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, P_NEW, RBM_NORMAL, NULL);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	UnlockRelationForExtension(index, ExclusiveLock);
	return buf;
}

// A hot page with `need` free bytes, locked exclusively: the insert page if it has room, else a page recycled by
// VACUUM (from the FSM), else a new page. *fresh says the caller must initialise it.
// insert_page is only a hint: a value that is not a data page of the index (0 is the metapage, which the caller
// may hold locked; past the end would extend the file) is treated as "none".
Buffer GetPageWithSpace(Relation index, BlockNumber insert_page, Size need, bool *fresh) {
	*fresh = false;
	if (insert_page != InvalidBlockNumber && insert_page != S5V_METAPAGE_BLKNO &&
	    insert_page < RelationGetNumberOfBlocks(index)) {
		Buffer buf = ReadBuffer(index, insert_page);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		Page p = BufferGetPage(buf);
		if (!PageIsNew(p) && S5vPageGetOpaque(p)->page_type == S5V_PAGE_HOT && PageGetFreeSpace(p) >= need)
			return buf;
		UnlockReleaseBuffer(buf);
	}
	// Pages VACUUM gave space back on (the FSM may be stale: check, correct it, try the next).
	for (int tries = 0; tries < 8; tries++) {
		BlockNumber freeblk = GetPageWithFreeSpace(index, need);
		if (freeblk == InvalidBlockNumber || freeblk == S5V_METAPAGE_BLKNO ||
		    freeblk >= RelationGetNumberOfBlocks(index))
			break;
		Buffer buf = ReadBuffer(index, freeblk);
		if (!ConditionalLockBuffer(buf)) {
			ReleaseBuffer(buf);
			break;
		}
		Page p = BufferGetPage(buf);
		// A page taken from the FSM leaves it (entry 0): it becomes the insert page, which the inserts after this one
		// fill without looking at the FSM, and a filled page with a stale entry would be offered again (8 such
		// entries in a row made every insert extend the index). VACUUM records the room it gives back. FSM pages
		// are locked below data pages.
		if (PageIsNew(p) || IsFreeColdPage(p)) { // a page offload or compaction freed is as good as a new one
			*fresh = true;
			RecordUsedIndexPage(index, freeblk);
			return buf;
		}
		if (S5vPageGetOpaque(p)->page_type == S5V_PAGE_HOT && PageGetFreeSpace(p) >= need) {
			RecordUsedIndexPage(index, freeblk);
			return buf;
		}
		Size actual = S5vPageGetOpaque(p)->page_type == S5V_PAGE_HOT ? PageGetFreeSpace(p) : 0;
		UnlockReleaseBuffer(buf);
		RecordPageWithFreeSpace(index, freeblk, actual);
	}
	*fresh = true;
	return ExtendIndex(index);
}

// Append the element and its neighbour tuple: on one page when they fit together, else the neighbour tuple on a
// page of its own (large vectors, high levels). Metapage and data pages change in one Generic WAL record.
void AppendElement(Relation index, uint32 dim, int m, ItemPointer heaptid, int64 age, uint8 flags, const float *vec,
                   int level, NodeId *out) {
	Size esize = S5V_ELEMENT_SIZE(dim);
	Size nsize = S5V_NEIGHBOR_SIZE(m, level);
	bool together = esize + nsize <= S5V_PAGE_FREE_SPACE;

	S5vElementTuple etup = (S5vElementTuple)palloc0(esize);
	etup->type = S5V_TUPLE_ELEMENT;
	etup->version = S5V_TUPLE_VERSION;
	etup->level = (uint8)level;
	etup->flags = flags;
	etup->heaptid = *heaptid;
	etup->age = age;
	memcpy(etup->x, vec, sizeof(float) * dim);
	S5vNeighborTuple ntup = (S5vNeighborTuple)palloc0(nsize);
	ntup->type = S5V_TUPLE_NEIGHBORS;
	ntup->version = S5V_TUPLE_VERSION;
	ntup->count = (uint16)S5V_NEIGHBOR_SLOTS(m, level);
	for (int i = 0; i < ntup->count; i++)
		ItemPointerSetInvalid(&ntup->tids[i]);

	// Lock order: data pages first, the metapage last (as VACUUM does), so that the metapage is never held while
	// waiting for a data page. insert_page is read under a share lock and is only a hint.
	Buffer metabuf = ReadBuffer(index, S5V_METAPAGE_BLKNO);
	LockBuffer(metabuf, BUFFER_LOCK_SHARE);
	BlockNumber insert_page = S5vPageGetMeta(BufferGetPage(metabuf))->insert_page;
	LockBuffer(metabuf, BUFFER_LOCK_UNLOCK);

	bool efresh, nfresh = false;
	Size eneed = together ? esize + nsize + 2 * sizeof(ItemIdData) : esize + sizeof(ItemIdData);
	Buffer ebuf = GetPageWithSpace(index, insert_page, eneed, &efresh);
	Buffer nbuf = ebuf;
	if (!together) {
		nbuf = ExtendIndex(index);
		nfresh = true;
	}

	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
	GenericXLogState *state = GenericXLogStart(index);
	Page epage = GenericXLogRegisterBuffer(state, ebuf, efresh ? GENERIC_XLOG_FULL_IMAGE : 0);
	Page npage = together ? epage : GenericXLogRegisterBuffer(state, nbuf, GENERIC_XLOG_FULL_IMAGE);
	Page metapage = GenericXLogRegisterBuffer(state, metabuf, 0);
	if (efresh)
		InitPage(epage, S5V_PAGE_HOT);
	if (nfresh)
		InitPage(npage, S5V_PAGE_HOT);
	// The neighbour tuple goes in first: the element records where it landed (offsets of removed tuples are reused).
	OffsetNumber noff = PageAddItem(npage, (Item)ntup, nsize, InvalidOffsetNumber, false, false);
	if (noff == InvalidOffsetNumber)
		elog(ERROR, "s5vector: failed to add neighbour tuple to index \"%s\"", RelationGetRelationName(index));
	ItemPointerSet(&etup->neighbortid, BufferGetBlockNumber(nbuf), noff);
	OffsetNumber eoff = PageAddItem(epage, (Item)etup, esize, InvalidOffsetNumber, false, false);
	if (eoff == InvalidOffsetNumber)
		elog(ERROR, "s5vector: failed to add element to index \"%s\"", RelationGetRelationName(index));
	S5vMetaPage meta = S5vPageGetMeta(metapage);
	meta->insert_page = BufferGetBlockNumber(nbuf);
	meta->hot_elements++;
	*out = NodeIdFromTid(BufferGetBlockNumber(ebuf), eoff);
	GenericXLogFinish(state);
	if (nbuf != ebuf)
		UnlockReleaseBuffer(nbuf);
	UnlockReleaseBuffer(ebuf);
	UnlockReleaseBuffer(metabuf);
	pfree(etup);
	pfree(ntup);
}

} // namespace

namespace {
inline std::size_t SeenSlot(hnsw::NodeId id, std::size_t mask) {
	return (std::size_t)((id * UINT64CONST(0x9E3779B97F4A7C15)) >> 20) & mask;
}
} // namespace

namespace {
// The table of the last store that ended in this backend, for the next one: every scan makes a store, and its
// table would otherwise grow from 1024 entries (rehashing) and be allocated again in every query.
std::vector<hnsw::NodeId> spare_seen_keys;
std::vector<PageGraphStore::NodeMeta> spare_seen_values;
constexpr std::size_t kMaxSpareSeen = std::size_t{1} << 16; // larger tables are freed (2.5 MiB)
} // namespace

PageGraphStore::SeenMap::SeenMap() {
	if (spare_seen_keys.empty())
		return;
	keys_.swap(spare_seen_keys);
	values_.swap(spare_seen_values);
	std::fill(keys_.begin(), keys_.end(), hnsw::kNoNode);
}

PageGraphStore::SeenMap::~SeenMap() {
	if (keys_.size() <= kMaxSpareSeen && keys_.size() > spare_seen_keys.size()) {
		keys_.swap(spare_seen_keys);
		values_.swap(spare_seen_values);
	}
}

PageGraphStore::NodeMeta *PageGraphStore::SeenMap::Find(hnsw::NodeId id) {
	if (keys_.empty())
		return nullptr;
	std::size_t mask = keys_.size() - 1;
	for (std::size_t i = SeenSlot(id, mask);; i = (i + 1) & mask) {
		if (keys_[i] == id)
			return &values_[i];
		if (keys_[i] == hnsw::kNoNode)
			return nullptr;
	}
}

void PageGraphStore::SeenMap::Put(hnsw::NodeId id, const NodeMeta &meta) {
	if ((count_ + 1) * 2 > keys_.size())
		Grow();
	std::size_t mask = keys_.size() - 1;
	for (std::size_t i = SeenSlot(id, mask);; i = (i + 1) & mask) {
		if (keys_[i] == id) {
			values_[i] = meta;
			return;
		}
		if (keys_[i] == hnsw::kNoNode) {
			keys_[i] = id;
			values_[i] = meta;
			count_++;
			return;
		}
	}
}

// Backward-shift deletion keeps probe chains intact.
void PageGraphStore::SeenMap::Erase(hnsw::NodeId id) {
	if (keys_.empty())
		return;
	std::size_t mask = keys_.size() - 1;
	std::size_t i = SeenSlot(id, mask);
	while (keys_[i] != id) {
		if (keys_[i] == hnsw::kNoNode)
			return;
		i = (i + 1) & mask;
	}
	keys_[i] = hnsw::kNoNode;
	count_--;
	for (std::size_t j = (i + 1) & mask; keys_[j] != hnsw::kNoNode; j = (j + 1) & mask) {
		std::size_t home = SeenSlot(keys_[j], mask);
		// Move keys_[j] into the hole at i if its home slot is not in (i, j].
		bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (!between) {
			keys_[i] = keys_[j];
			values_[i] = values_[j];
			keys_[j] = hnsw::kNoNode;
			i = j;
		}
	}
}

void PageGraphStore::SeenMap::Grow() {
	std::vector<hnsw::NodeId> old_keys(keys_.empty() ? 1024 : keys_.size() * 2, hnsw::kNoNode);
	std::vector<NodeMeta> old_values(old_keys.size());
	old_keys.swap(keys_);
	old_values.swap(values_);
	count_ = 0;
	for (std::size_t i = 0; i < old_keys.size(); i++)
		if (old_keys[i] != hnsw::kNoNode)
			Put(old_keys[i], old_values[i]);
}

PageGraphStore::PageGraphStore(Relation index, const IndexInfoCache &info) : index_(index), info_(info) {}

// Every PostgreSQL call of the store goes through here: once one has failed (an error raised, perhaps with a
// buffer lock still held until the transaction aborts), the store does no further buffer I/O and returns that
// first error again.
#define S5V_STORE_CALL(status_var, ...)                                                                                \
	do {                                                                                                               \
		if (!failed_.ok())                                                                                             \
			return failed_;                                                                                            \
		BlockNumber *nblocks = &nblocks_;                                                                              \
		BlockNumber *heap_nblocks = &heap_nblocks_;                                                                    \
		(void)nblocks;                                                                                                 \
		(void)heap_nblocks;                                                                                            \
		S5V_PG_CALL(status_var, __VA_ARGS__);                                                                          \
		if (!(status_var).ok())                                                                                        \
			failed_ = (status_var);                                                                                    \
	} while (0)

Status PageGraphStore::EntryPoint(NodeId &node, int &level) {
	Status st;
	NodeId n = hnsw::kNoNode;
	int l = -1;
	S5V_STORE_CALL(st, ReadEntryPoint(index_, nblocks, &n, &l));
	node = n;
	level = l;
	return st;
}

void PageGraphStore::EnableVectorCache(std::size_t max_bytes) {
	vcache_cap_ = max_bytes / (sizeof(float) * std::max<uint32>(info_.dimensions, 1));
	vcache_.reserve(std::min<std::size_t>(vcache_cap_, 1024) * info_.dimensions);
}

int32 PageGraphStore::KeepVector(const float *vec) {
	uint32 dim = info_.dimensions;
	std::size_t kept = vcache_.size() / dim;
	if (kept >= vcache_cap_ || kept >= (std::size_t)PG_INT32_MAX) {
		if (vcache_cap_ == 0)
			return -1;
		// Full: start over (every slot handed out so far becomes invalid with the old generation).
		vcache_.clear();
		vgen_++;
		kept = 0;
	}
	vcache_.insert(vcache_.end(), vec, vec + dim);
	return (int32)kept;
}

bool PageGraphStore::Kept(const NodeMeta *m) const {
	return m != nullptr && m->vslot >= 0 && m->vgen == vgen_;
}

// Distances read from the pages (every element seen is remembered; its vector kept when the cache is on).
Status PageGraphStore::ReadDistances(const float *query, const NodeId *ids, std::size_t n, float *o, uint8 *p) {
	if (scratch_.size() < n)
		scratch_.resize(n);
	bool keep = vcache_cap_ > 0;
	uint32 dim = info_.dimensions;
	if (keep && vtmp_.size() < n * dim)
		vtmp_.resize(n * dim);
	Status st;
	Relation index = index_;
	s5v::Metric metric = info_.metric;
	const AgeFilter *filter = &filter_;
	ElementRef *r = scratch_.data();
	float *vecs = keep ? vtmp_.data() : nullptr;
	S5V_STORE_CALL(st,
	               ComputeDistances(index, nblocks, heap_nblocks, metric, dim, filter, query, ids, n, o, p, r, vecs));
	if (!st.ok())
		return st;
	for (size_t i = 0; i < n; i++) {
		if (!scratch_[i].valid)
			continue;
		const NodeMeta *old = keep ? seen_.Find(ids[i]) : nullptr;
		scratch_[i].vslot = !keep ? -1 : Kept(old) ? old->vslot : KeepVector(vecs + i * dim);
		scratch_[i].vgen = vgen_;
		seen_.Put(ids[i], scratch_[i]);
	}
	return Status::Ok();
}

Status PageGraphStore::Distances(const float *query, std::span<const NodeId> nodes, std::span<float> out,
                                 std::span<std::uint8_t> pass) {
	uint8 *p = pass.empty() ? nullptr : pass.data();
	if (vcache_cap_ == 0)
		return ReadDistances(query, nodes.data(), nodes.size(), out.data(), p);
	// Kept vectors first; the rest (in their order, which is the caller's block order) from the pages.
	uint32 dim = info_.dimensions;
	miss_ids_.clear();
	miss_pos_.clear();
	for (std::size_t i = 0; i < nodes.size(); i++) {
		const NodeMeta *m = seen_.Find(nodes[i]);
		if (Kept(m) && (p == nullptr || m->tid_checked || (m->flags & S5V_ELEMENT_DELETED))) {
			float d = s5v::IndexDistance(info_.metric, query, vcache_.data() + (std::size_t)m->vslot * dim, dim);
			if (likely(std::isfinite(d))) { // else the page read below checks the stored vector
				out[i] = d;
				if (p != nullptr)
					p[i] = !(m->flags & S5V_ELEMENT_DELETED) && filter_.Matches(m->age, m->flags);
				continue;
			}
		}
		miss_ids_.push_back(nodes[i]);
		miss_pos_.push_back((std::uint32_t)i);
	}
	if (miss_ids_.empty())
		return Status::Ok();
	if (miss_ids_.size() == nodes.size())
		return ReadDistances(query, nodes.data(), nodes.size(), out.data(), p);
	miss_out_.resize(miss_ids_.size());
	miss_pass_.resize(miss_ids_.size());
	S5V_RETURN_IF_ERROR(ReadDistances(query, miss_ids_.data(), miss_ids_.size(), miss_out_.data(),
	                                  p != nullptr ? miss_pass_.data() : nullptr));
	for (std::size_t j = 0; j < miss_ids_.size(); j++) {
		out[miss_pos_[j]] = miss_out_[j];
		if (p != nullptr)
			p[miss_pos_[j]] = miss_pass_[j];
	}
	return Status::Ok();
}

Status PageGraphStore::Lookup(NodeId node, NodeMeta &meta) {
	if (NodeMeta *found = seen_.Find(node)) {
		meta = *found;
		return Status::Ok();
	}
	ElementRef ref{};
	Status st;
	Relation index = index_;
	S5V_STORE_CALL(st, ReadElementRef(index, nblocks, node, &ref, nullptr, 0));
	if (!st.ok())
		return st;
	if (!ref.valid)
		return Status::Corrupt("element referenced by the graph is missing");
	meta = ref;
	seen_.Put(node, meta);
	return Status::Ok();
}

Status PageGraphStore::Neighbors(NodeId node, int level, std::vector<NodeId> &out) {
	out.clear();
	NodeMeta meta;
	Status st = Lookup(node, meta);
	if (!st.ok()) {
		// A slot that no longer holds an element (removed by VACUUM under a concurrent scan) has no neighbours.
		return st.code() == StatusCode::Corrupt ? Status::Ok() : st;
	}
	if (level > meta.level)
		return Status::Ok();
	out.resize(level == 0 ? 2 * info_.m : info_.m);
	Relation index = index_;
	ItemPointerData ntid = meta.neighbortid;
	int m = info_.m;
	NodeId *buf = out.data();
	int cap = (int)out.size();
	int n = 0;
	S5V_STORE_CALL(st, n = ReadNeighborSlots(index, nblocks, &ntid, m, level, buf, cap));
	out.resize(st.ok() ? n : 0);
	return st;
}

Status PageGraphStore::Vector(NodeId node, std::vector<float> &out) {
	uint32 dim = info_.dimensions;
	out.resize(dim);
	if (vcache_cap_ > 0) {
		if (const NodeMeta *m = seen_.Find(node); Kept(m)) {
			memcpy(out.data(), vcache_.data() + (std::size_t)m->vslot * dim, sizeof(float) * dim);
			return Status::Ok();
		}
	}
	ElementRef ref{};
	Status st;
	Relation index = index_;
	float *v = out.data();
	S5V_STORE_CALL(st, ReadElementRef(index, nblocks, node, &ref, v, dim));
	if (st.ok() && !ref.valid)
		return Status::Corrupt("element referenced by the graph is missing");
	if (st.ok() && vcache_cap_ > 0) {
		// Keep it (its flags as read now; the heap TID unchecked, so a pass-asking distance reads the page once).
		if (NodeMeta *m = seen_.Find(node); m != nullptr)
			ref.tid_checked = m->tid_checked;
		ref.vslot = KeepVector(v);
		ref.vgen = vgen_;
		seen_.Put(node, ref);
	}
	return st;
}

Status PageGraphStore::SetNeighbors(NodeId node, int level, std::span<const NodeId> neighbors) {
	NodeMeta meta;
	S5V_RETURN_IF_ERROR(Lookup(node, meta));
	Status st;
	Relation index = index_;
	ItemPointerData ntid = meta.neighbortid;
	int m = info_.m;
	const NodeId *ids = neighbors.data();
	int n = (int)neighbors.size();
	S5V_STORE_CALL(st, WriteNeighborSlots(index, nblocks, &ntid, m, level, ids, n));
	return st;
}

Status PageGraphStore::CompareAndSetNeighbors(NodeId node, int level, std::span<const NodeId> expected,
                                              std::span<const NodeId> desired, bool &applied) {
	applied = false;
	NodeMeta meta;
	Status found = Lookup(node, meta);
	if (found.code() == StatusCode::Corrupt)
		return Status::Ok(); // the slot holds no element any more (removed by VACUUM): nothing to link
	S5V_RETURN_IF_ERROR(found);
	// VACUUM waits out the inserts in flight before it removes an element, so a slot reused at a lower level
	// cannot be reached here through a stale link: only a corrupt page gets here.
	if (level > meta.level)
		return Status::Corrupt("a neighbour list above the level of its element");
	Status st;
	Relation index = index_;
	ItemPointerData ntid = meta.neighbortid;
	int m = info_.m;
	const NodeId *exp = expected.data();
	int nexp = (int)expected.size();
	const NodeId *des = desired.data();
	int ndes = (int)desired.size();
	bool done = false;
	S5V_STORE_CALL(st, CasNeighborSlots(index, nblocks, &ntid, m, level, exp, nexp, des, ndes, &done));
	applied = done;
	return st;
}

Status PageGraphStore::SetEntryPoint(NodeId node, int level) {
	Status st;
	Relation index = index_;
	S5V_STORE_CALL(st, WriteEntryPoint(index, node, level));
	return st;
}

Status PageGraphStore::AddElement(ItemPointer heaptid, int64 age, uint8 flags, const float *vec, int level,
                                  NodeId &out) {
	Status st;
	Relation index = index_;
	uint32 dim = info_.dimensions;
	int m = info_.m;
	NodeId id = hnsw::kNoNode;
	S5V_STORE_CALL(st, AppendElement(index, dim, m, heaptid, age, flags, vec, level, &id));
	if (!st.ok())
		return st;
	out = id;
	seen_.Erase(id);
	return Status::Ok();
}

bool PageGraphStore::HeapTid(NodeId node, ItemPointerData &out) const {
	const NodeMeta *found = const_cast<SeenMap &>(seen_).Find(node);
	if (found == nullptr)
		return false;
	out = found->heaptid;
	return true;
}

} // namespace s5v::pg
