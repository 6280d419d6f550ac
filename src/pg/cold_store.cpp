// The cold tier over index pages (see cold_store.h and cold_pages.h).
extern "C" {
#include "postgres.h"

#include "access/generic_xlog.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"
}

#include "pg/cold_store.h"
#include "pg/guard.h"
#include "pg/offload.h"

#include <cmath>
#include <memory>
#include <new>

namespace s5v::pg {

// ---- page checks -------------------------------------------------------------------------------------------------

void ReportCorruptCold(Relation index, BlockNumber blk, const char *what) {
	ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
	                errmsg("index \"%s\" contains a corrupted cold-tier page at block %u: %s",
	                       RelationGetRelationName(index), blk, what),
	                errhint("Please REINDEX it.")));
	pg_unreachable();
}

void CheckChainStep(Relation index, BlockNumber blk, BlockNumber nblocks, BlockNumber *walked, const char *what) {
	if (blk <= S5V_METAPAGE_BLKNO || blk >= nblocks || ++*walked > nblocks)
		ReportCorruptCold(index, blk, what);
}

namespace {

void ResetEntry(S5vListInfo e) {
	e->rows = 0;
	e->min_age = PG_INT64_MAX;
	e->max_age = PG_INT64_MIN;
	e->tail_head = InvalidBlockNumber;
	e->tail_tail = InvalidBlockNumber;
	e->parts_head = InvalidBlockNumber;
	e->tail_pages = 0;
}

bool BlockOk(BlockNumber blk, BlockNumber nblocks) {
	return blk == InvalidBlockNumber || (blk > S5V_METAPAGE_BLKNO && blk < nblocks);
}

bool EntryOk(const S5vListInfoData *e, BlockNumber nblocks) {
	return e->rows >= 0 && BlockOk(e->tail_head, nblocks) && BlockOk(e->tail_tail, nblocks) &&
	       BlockOk(e->parts_head, nblocks) &&
	       (e->tail_head == InvalidBlockNumber) == (e->tail_tail == InvalidBlockNumber);
}

// A list entry's fields against the index size (the centroid is checked by the readers that use it). A pointer
// read from a locked page may name a block a concurrent append added after the caller read the size (the append
// extends the index, then links the new page): the size is read again before this is called corruption.
void CheckEntry(Relation index, BlockNumber blk, const S5vListInfoData *e, BlockNumber nblocks) {
	if (!EntryOk(e, nblocks) && !EntryOk(e, RelationGetNumberOfBlocks(index)))
		ReportCorruptCold(index, blk, "list entry with impossible counters or page pointers");
}

} // namespace

char *InitColdPage(Page page, uint16 page_type, uint8 tuple_type) {
	InitPage(page, page_type);
	char *item = (char *)palloc0(S5V_COLD_ITEM_SIZE);
	item[0] = (char)tuple_type;
	item[1] = (char)(tuple_type == S5V_TUPLE_COLD_PART ? S5V_PART_VERSION : S5V_COLD_VERSION);
	if (PageAddItem(page, (Item)item, S5V_COLD_ITEM_SIZE, FirstOffsetNumber, false, false) != FirstOffsetNumber)
		elog(ERROR, "s5vector: failed to add the item of a cold page");
	pfree(item);
	return (char *)PageGetItem(page, PageGetItemId(page, FirstOffsetNumber));
}

char *GetColdItem(Relation index, Page page, BlockNumber blkno, uint16 page_type, uint8 tuple_type) {
	CheckPage(index, page, blkno);
	if (S5vPageGetOpaque(page)->page_type != page_type)
		ReportCorruptCold(index, blkno, "unexpected page type");
	if (PageGetMaxOffsetNumber(page) != FirstOffsetNumber)
		ReportCorruptCold(index, blkno, "not exactly one item");
	ItemId iid = PageGetItemId(page, FirstOffsetNumber);
	if (!ItemIdIsNormal(iid) || ItemIdGetLength(iid) != S5V_COLD_ITEM_SIZE ||
	    ItemIdGetOffset(iid) < SizeOfPageHeaderData ||
	    ItemIdGetOffset(iid) + ItemIdGetLength(iid) > ((PageHeader)page)->pd_special)
		ReportCorruptCold(index, blkno, "item of the wrong size or outside the page");
	char *item = (char *)PageGetItem(page, iid);
	if ((uint8)item[0] == S5V_TUPLE_COLD_PART && tuple_type == S5V_TUPLE_COLD_PART &&
	    (uint8)item[1] != S5V_PART_VERSION)
		ReportCorruptCold(index, blkno,
		                  (uint8)item[1] < S5V_PART_VERSION
		                      ? "part page of an older format (built before part version 2)"
		                      : "part page of an unknown format version");
	uint8 want_version = tuple_type == S5V_TUPLE_COLD_PART   ? S5V_PART_VERSION
	                     : tuple_type == S5V_TUPLE_QUANTIZER ? S5V_QUANTIZER_VERSION
	                                                         : S5V_COLD_VERSION;
	bool coded_rows = tuple_type == S5V_TUPLE_COLD_ROWS && (uint8)item[1] == S5V_ROWS_VERSION_CODED;
	if ((uint8)item[0] != tuple_type || ((uint8)item[1] != want_version && !coded_rows))
		ReportCorruptCold(index, blkno, "unknown tuple type or version");
	return item;
}

S5vColdRows GetColdRows(Relation index, Page page, BlockNumber blkno, uint32 dim, S5vRowsLayout *layout) {
	S5vColdRows rows = (S5vColdRows)GetColdItem(index, page, blkno, S5V_PAGE_COLD_ROWS, S5V_TUPLE_COLD_ROWS);
	bool coded = rows->version == S5V_ROWS_VERSION_CODED;
	if (rows->capacity != RowsPerPage(dim, coded) || rows->count > rows->capacity)
		ReportCorruptCold(index, blkno, "row count or capacity impossible for the dimensions");
	*layout = RowsLayoutFor(dim, rows->capacity, coded);
	return rows;
}

S5vColdMeta GetColdMeta(Relation index, Page page, BlockNumber blkno, uint32 dim, BlockNumber nblocks) {
	S5vColdMeta cm = (S5vColdMeta)GetColdItem(index, page, blkno, S5V_PAGE_COLD_META, S5V_TUPLE_COLD_META);
	if (cm->magic != S5V_COLD_MAGIC)
		ReportCorruptCold(index, blkno, "bad magic number in the cold metapage");
	if (cm->dimensions != dim)
		ReportCorruptCold(index, blkno, "cold metapage dimensions differ from the index's");
	if (cm->lists > S5V_MAX_LISTS || cm->cold_rows < 0 || cm->train_rows < 0 || cm->dead_rows < 0 ||
	    cm->dead_rows > cm->cold_rows)
		ReportCorruptCold(index, blkno, "cold metapage counters out of range");
	if (cm->lists > 0) {
		uint32 per = ListsPerCentroidPage(dim);
		if (cm->lists_per_page != per || cm->centroid_pages != (cm->lists + per - 1) / per ||
		    cm->centroid_head == InvalidBlockNumber || cm->centroid_head <= S5V_METAPAGE_BLKNO ||
		    ((uint64)cm->centroid_head + cm->centroid_pages > nblocks &&
		     (uint64)cm->centroid_head + cm->centroid_pages > RelationGetNumberOfBlocks(index)))
			ReportCorruptCold(index, blkno, "cold metapage centroid pages outside the index");
	} else if (cm->centroid_head != InvalidBlockNumber || cm->centroid_pages != 0) {
		ReportCorruptCold(index, blkno, "centroid pages without trained lists");
	}
	if (cm->cold_codes != S5V_CODES_NONE &&
	    (cm->cold_codes != S5V_CODES_SQ8 || cm->lists == 0 || cm->quant_pages != QuantizerPagesFor(dim) ||
	     cm->quant_head <= S5V_METAPAGE_BLKNO || cm->quant_head == InvalidBlockNumber ||
	     ((uint64)cm->quant_head + cm->quant_pages > nblocks &&
	      (uint64)cm->quant_head + cm->quant_pages > RelationGetNumberOfBlocks(index))))
		ReportCorruptCold(index, blkno, "cold metapage quantizer fields impossible");
	CheckEntry(index, blkno, &cm->staging, nblocks);
	return cm;
}

// ---- locks and the tier's state -----------------------------------------------------------------------------------

void LockColdWrite(Relation index) {
	LockPage(index, S5V_COLD_WRITE_LOCK, ExclusiveLock);
}

void UnlockColdWrite(Relation index) {
	UnlockPage(index, S5V_COLD_WRITE_LOCK, ExclusiveLock);
}

void ReadColdTier(Relation index, const S5vMetaPageData &meta, uint32 dim, ColdTierInfo *out) {
	memset(out, 0, sizeof(*out));
	out->meta_blkno = meta.cold_metapage;
	out->centroid_head = InvalidBlockNumber;
	if (meta.cold_metapage == InvalidBlockNumber)
		return;
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	if (meta.cold_metapage <= S5V_METAPAGE_BLKNO || meta.cold_metapage >= nblocks)
		ReportCorruptCold(index, meta.cold_metapage, "cold metapage pointer outside the index");
	Buffer buf = ReadBuffer(index, meta.cold_metapage);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	S5vColdMeta cm = GetColdMeta(index, BufferGetPage(buf), meta.cold_metapage, dim, nblocks);
	out->lists = cm->lists;
	out->lists_per_page = cm->lists_per_page;
	out->centroid_pages = cm->centroid_pages;
	out->centroid_head = cm->centroid_head;
	out->cold_rows = cm->cold_rows;
	out->dead_rows = cm->dead_rows;
	out->train_rows = cm->train_rows;
	out->rebalance_pending = cm->rebalance_pending;
	out->staging = cm->staging;
	out->cold_codes = cm->cold_codes;
	out->quant_head = cm->cold_codes != S5V_CODES_NONE ? cm->quant_head : InvalidBlockNumber;
	out->quant_pages = cm->cold_codes != S5V_CODES_NONE ? cm->quant_pages : 0;
	UnlockReleaseBuffer(buf);
}

// ---- writers ------------------------------------------------------------------------------------------------------

namespace {

// A new page at the end of the index, locked exclusively (the caller may already hold the extension lock).
Buffer NewPage(Relation index, bool have_extension_lock) {
	if (!have_extension_lock)
		LockRelationForExtension(index, ExclusiveLock);
	Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, P_NEW, RBM_NORMAL, NULL);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	if (!have_extension_lock)
		UnlockRelationForExtension(index, ExclusiveLock);
	return buf;
}

// The pages of one change: through Generic WAL, or (inside CREATE INDEX, logged at its end) in place.
struct PageEdit {
	bool wal;
	GenericXLogState *state;
	Buffer bufs[4];
	int n;

	explicit PageEdit(Relation index, bool with_wal) : wal(with_wal), state(nullptr), n(0) {
		if (wal)
			state = GenericXLogStart(index);
	}
	Page Register(Buffer buf, bool fresh) {
		bufs[n++] = buf;
		if (wal)
			return GenericXLogRegisterBuffer(state, buf, fresh ? GENERIC_XLOG_FULL_IMAGE : 0);
		return BufferGetPage(buf);
	}
	void Finish() {
		if (wal) {
			GenericXLogFinish(state);
		} else {
			for (int i = 0; i < n; i++)
				MarkBufferDirty(bufs[i]);
		}
	}
};

} // namespace

BlockNumber EnsureColdTier(Relation index, uint32 dim, int64 train_rows, bool wal) {
	Buffer metabuf = ReadBuffer(index, S5V_METAPAGE_BLKNO);
	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
	BlockNumber existing = S5vPageGetMeta(BufferGetPage(metabuf))->cold_metapage;
	if (existing != InvalidBlockNumber) {
		UnlockReleaseBuffer(metabuf);
		return existing;
	}
	Buffer buf = NewPage(index, false);
	BlockNumber blk = BufferGetBlockNumber(buf);
	PageEdit edit(index, wal);
	Page metapage = edit.Register(metabuf, false);
	Page page = edit.Register(buf, true);
	S5vColdMeta cm = (S5vColdMeta)InitColdPage(page, S5V_PAGE_COLD_META, S5V_TUPLE_COLD_META);
	cm->magic = S5V_COLD_MAGIC;
	cm->dimensions = dim;
	cm->centroid_head = InvalidBlockNumber;
	cm->train_rows = train_rows;
	ResetEntry(&cm->staging);
	S5vPageGetMeta(metapage)->cold_metapage = blk;
	edit.Finish();
	UnlockReleaseBuffer(buf);
	UnlockReleaseBuffer(metabuf);
	return blk;
}

// ---- the quantizer ------------------------------------------------------------------------------------------------

namespace {

// This backend's copy of the quantizer an append or a build last used: the parameters as read from the pages, and
// the quantizer made from them. An append compares the pages' parameters with the copy (one page read at 784
// dimensions) and rebuilds it when they differ, so no index ever encodes with another's quantizer.
struct CoderCache {
	uint32 dim;
	float *params; // 2 * dim: lo, step (TopMemoryContext)
	s5v::ScalarQuantizer *quant;
};
CoderCache coder_cache;

const s5v::ScalarQuantizer *CacheCoder(const float *lo, const float *step, uint32 dim, s5v::Metric metric) {
	if (coder_cache.quant != nullptr && coder_cache.dim == dim && coder_cache.quant->metric() == metric &&
	    memcmp(coder_cache.params, lo, sizeof(float) * dim) == 0 &&
	    memcmp(coder_cache.params + dim, step, sizeof(float) * dim) == 0)
		return coder_cache.quant;
	if (coder_cache.params != nullptr)
		pfree(coder_cache.params);
	coder_cache.params = (float *)MemoryContextAlloc(TopMemoryContext, sizeof(float) * 2 * dim);
	memcpy(coder_cache.params, lo, sizeof(float) * dim);
	memcpy(coder_cache.params + dim, step, sizeof(float) * dim);
	coder_cache.dim = dim;
	s5v::ScalarQuantizer **slot = &coder_cache.quant;
	Guarded([&]() -> Status {
		delete *slot;
		*slot = nullptr;
		auto q = std::make_unique<s5v::ScalarQuantizer>();
		S5V_RETURN_IF_ERROR(q->Load(metric, std::span<const float>(lo, dim), std::span<const float>(step, dim)));
		*slot = q.release();
		return Status::Ok();
	});
	return coder_cache.quant;
}

// The quantizer of the tier whose cold metapage is meta_blkno, or NULL when it has no codes. Takes buffer locks:
// call holding none of this index.
const s5v::ScalarQuantizer *LookupCoder(Relation index, uint32 dim, BlockNumber meta_blkno) {
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	if (meta.cold_metapage != meta_blkno)
		meta.cold_metapage = meta_blkno;
	ColdTierInfo tier;
	ReadColdTier(index, meta, dim, &tier);
	if (tier.cold_codes == S5V_CODES_NONE)
		return nullptr;
	float *lo = (float *)palloc(sizeof(float) * 2 * dim);
	(void)ReadColdQuantizer(index, dim, tier, lo, lo + dim);
	const s5v::ScalarQuantizer *q = CacheCoder(lo, lo + dim, dim, GetIndexInfo(index).metric);
	pfree(lo);
	return q;
}

} // namespace

bool ColdCodesWanted(Relation index, uint32 dim) {
	int option = OptionColdCodes(index);
	if (option == S5V_COLD_CODES_AUTO)
		return dim >= S5V_CODES_AUTO_MIN_DIM;
	return option == S5V_COLD_CODES_ON;
}

namespace {
// A run of `npages` new pages that must be contiguous (the extension lock is held across it, so nothing else
// extends meanwhile), each filled by fill(page, p) in its own record (none without wal). Returns the first block.
template <class F>
BlockNumber WriteContiguousPages(Relation index, uint32 npages, bool wal, const char *what, F &&fill) {
	BlockNumber first = InvalidBlockNumber;
	LockRelationForExtension(index, ExclusiveLock);
	for (uint32 p = 0; p < npages; p++) {
		Buffer buf = NewPage(index, true);
		BlockNumber blk = BufferGetBlockNumber(buf);
		if (p == 0)
			first = blk;
		else if (blk != first + p)
			elog(ERROR, "s5vector: %s pages are not contiguous (%u after %u)", what, blk, first + p - 1);
		PageEdit edit(index, wal);
		fill(edit.Register(buf, true), p);
		edit.Finish();
		UnlockReleaseBuffer(buf);
	}
	UnlockRelationForExtension(index, ExclusiveLock);
	return first;
}
} // namespace

BlockNumber WriteQuantizerPages(Relation index, uint32 dim, const float *lo, const float *step, bool wal) {
	uint32 per = QuantizerDimsPerPage();
	return WriteContiguousPages(index, QuantizerPagesFor(dim), wal, "quantizer", [&](Page page, uint32 p) {
		S5vQuantizer qp = (S5vQuantizer)InitColdPage(page, S5V_PAGE_COLD_META, S5V_TUPLE_QUANTIZER);
		qp->dimensions = dim;
		qp->first = p * per;
		qp->count = Min(per, dim - p * per);
		memcpy(qp->values, lo + qp->first, sizeof(float) * qp->count);
		memcpy(qp->values + qp->count, step + qp->first, sizeof(float) * qp->count);
	});
}

bool ReadColdQuantizer(Relation index, uint32 dim, const ColdTierInfo &tier, float *lo, float *step) {
	if (tier.cold_codes == S5V_CODES_NONE)
		return false;
	uint32 per = QuantizerDimsPerPage();
	for (uint32 p = 0; p < tier.quant_pages; p++) {
		BlockNumber blk = tier.quant_head + p;
		Buffer buf = ReadBuffer(index, blk);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		S5vQuantizer qp =
		    (S5vQuantizer)GetColdItem(index, BufferGetPage(buf), blk, S5V_PAGE_COLD_META, S5V_TUPLE_QUANTIZER);
		if (qp->dimensions != dim || qp->first != p * per || qp->count != Min(per, dim - p * per)) {
			UnlockReleaseBuffer(buf);
			ReportCorruptCold(index, blk, "quantizer page does not hold the dimensions it should");
		}
		for (uint32 d = 0; d < qp->count; d++) {
			float l = qp->values[d], st = qp->values[qp->count + d];
			if (!std::isfinite(l) || !std::isfinite(st) || st < 0.0f) {
				UnlockReleaseBuffer(buf);
				ReportCorruptCold(index, blk, "quantizer parameter not finite or negative step");
			}
			lo[qp->first + d] = l;
			step[qp->first + d] = st;
		}
		UnlockReleaseBuffer(buf);
	}
	return true;
}

const s5v::ScalarQuantizer *TrainColdQuantizer(Relation index, const IndexInfoCache &info, const float *rows, int64 n,
                                               bool wal, BlockNumber *head) {
	*head = InvalidBlockNumber;
	uint32 dim = info.dimensions;
	if (n <= 0 || !ColdCodesWanted(index, dim))
		return nullptr;
	float *params = (float *)palloc(sizeof(float) * 2 * dim);
	Guarded([&]() -> Status {
		s5v::ScalarQuantizer q;
		S5V_RETURN_IF_ERROR(
		    q.Train(std::span<const float>(rows, (std::size_t)n * dim), (std::size_t)n, dim, info.metric));
		memcpy(params, q.lo().data(), sizeof(float) * dim);
		memcpy(params + dim, q.step().data(), sizeof(float) * dim);
		return Status::Ok();
	});
	*head = WriteQuantizerPages(index, dim, params, params + dim, wal);
	const s5v::ScalarQuantizer *q = CacheCoder(params, params + dim, dim, info.metric);
	pfree(params);
	return q;
}

namespace {

// One step of ColdAppendRows: rows from..n-1 (as many as fit) into one page of the list (the tail, a page with room
// VACUUM freed, or a new page), under one lock cycle and one WAL record. Returns how many it took (at least 1).
int64 AppendToOnePage(Relation index, uint32 dim, const ColdAppendTarget &target, uint32 list, bool staging,
                      const s5v::ScalarQuantizer *coder, int64 from, int64 n, const ColdRowsIn &in) {
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	// Lock and check, in the documented order: cold metapage, centroid page, tail page, new page.
	Buffer metabuf = InvalidBuffer, cbuf = InvalidBuffer, tbuf = InvalidBuffer, nbuf = InvalidBuffer;
	bool need_meta = staging || target.count_in_meta;
	if (need_meta) {
		metabuf = ReadBuffer(index, target.meta_blkno);
		LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
		(void)GetColdMeta(index, BufferGetPage(metabuf), target.meta_blkno, dim, nblocks);
	}
	BlockNumber cblk = InvalidBlockNumber;
	uint32 slot = 0;
	const S5vListInfoData *entry;
	if (staging) {
		entry = &((S5vColdMeta)GetColdItem(index, BufferGetPage(metabuf), target.meta_blkno, S5V_PAGE_COLD_META,
		                                   S5V_TUPLE_COLD_META))
		             ->staging;
	} else {
		cblk = target.centroid_head + list / target.lists_per_page;
		slot = list % target.lists_per_page;
		if (cblk >= nblocks)
			ReportCorruptCold(index, cblk, "centroid page outside the index");
		cbuf = ReadBuffer(index, cblk);
		LockBuffer(cbuf, BUFFER_LOCK_EXCLUSIVE);
		S5vCentroids c =
		    (S5vCentroids)GetColdItem(index, BufferGetPage(cbuf), cblk, S5V_PAGE_CENTROIDS, S5V_TUPLE_CENTROIDS);
		if (c->first_list != list - slot || slot >= c->count)
			ReportCorruptCold(index, cblk, "centroid page does not hold the list it should");
		entry = CentroidEntry(c, slot, dim);
	}
	CheckEntry(index, staging ? target.meta_blkno : cblk, entry, nblocks);
	BlockNumber tail = entry->tail_tail;
	bool use_tail = false;
	if (tail != InvalidBlockNumber) {
		tbuf = ReadBuffer(index, tail);
		LockBuffer(tbuf, BUFFER_LOCK_EXCLUSIVE);
		S5vRowsLayout l;
		S5vColdRows rows = GetColdRows(index, BufferGetPage(tbuf), tail, dim, &l);
		if (rows->list != list || S5vPageGetOpaque(BufferGetPage(tbuf))->nextblkno != InvalidBlockNumber)
			ReportCorruptCold(index, tail, "tail page of another list, or not the last of its chain");
		use_tail = rows->count < rows->capacity;
	}
	if (!use_tail && tail != InvalidBlockNumber && entry->tail_pages > 1 && target.reuse_room) {
		// The tail is full: a page of the chain that VACUUM compacted (cold_vacuum.cpp) takes the row before the
		// index grows. At most kColdRoomWalkPages share-locked reads from the head (the oldest pages, where deletes
		// gather), once per page the tail fills: an append never reads the whole chain. A scan that already passed
		// the page misses the row as it would miss a tail append (movers wait for such scans).
		BlockNumber room = InvalidBlockNumber;
		BlockNumber walked = 0;
		for (BlockNumber blk = entry->tail_head;
		     blk != InvalidBlockNumber && blk != tail && walked < kColdRoomWalkPages;) {
			CheckChainStep(index, blk, nblocks, &walked, "list chain leaves the index or loops");
			Buffer b = ReadBuffer(index, blk);
			LockBuffer(b, BUFFER_LOCK_SHARE);
			S5vRowsLayout l;
			S5vColdRows rows = GetColdRows(index, BufferGetPage(b), blk, dim, &l);
			bool fits = rows->list == list && rows->count < rows->capacity;
			BlockNumber next = S5vPageGetOpaque(BufferGetPage(b))->nextblkno;
			UnlockReleaseBuffer(b);
			if (fits) {
				room = blk;
				break;
			}
			blk = next;
		}
		if (room != InvalidBlockNumber) {
			Buffer rbuf = ReadBuffer(index, room);
			LockBuffer(rbuf, BUFFER_LOCK_EXCLUSIVE);
			S5vRowsLayout l;
			S5vColdRows rows = GetColdRows(index, BufferGetPage(rbuf), room, dim, &l);
			if (rows->list == list && rows->count < rows->capacity) {
				UnlockReleaseBuffer(tbuf);
				tbuf = rbuf;
				use_tail = true;
			} else {
				UnlockReleaseBuffer(rbuf);
			}
		}
	}
	if (!use_tail)
		nbuf = NewPage(index, false);

	PageEdit edit(index, target.wal);
	Page metapage = BufferIsValid(metabuf) ? edit.Register(metabuf, false) : nullptr;
	Page cpage = BufferIsValid(cbuf) ? edit.Register(cbuf, false) : nullptr;
	Page tpage = BufferIsValid(tbuf) ? edit.Register(tbuf, false) : nullptr;
	Page npage = BufferIsValid(nbuf) ? edit.Register(nbuf, true) : nullptr;

	S5vColdMeta cm =
	    metapage ? (S5vColdMeta)PageGetItem(metapage, PageGetItemId(metapage, FirstOffsetNumber)) : nullptr;
	S5vListInfo e =
	    staging ? &cm->staging
	            : CentroidEntry((S5vCentroids)PageGetItem(cpage, PageGetItemId(cpage, FirstOffsetNumber)), slot, dim);
	S5vColdRows rows;
	if (npage != nullptr) {
		rows = (S5vColdRows)InitColdPage(npage, S5V_PAGE_COLD_ROWS, S5V_TUPLE_COLD_ROWS);
		bool coded = coder != nullptr && !staging;
		if (coded)
			rows->version = S5V_ROWS_VERSION_CODED;
		rows->capacity = (uint16)RowsPerPage(dim, coded);
		rows->list = list;
		BlockNumber nblk = BufferGetBlockNumber(nbuf);
		if (tpage != nullptr)
			S5vPageGetOpaque(tpage)->nextblkno = nblk;
		else
			e->tail_head = nblk;
		e->tail_tail = nblk;
		e->tail_pages++;
	} else {
		rows = (S5vColdRows)PageGetItem(tpage, PageGetItemId(tpage, FirstOffsetNumber));
	}
	bool coded_page = rows->version == S5V_ROWS_VERSION_CODED;
	if (coded_page && (coder == nullptr || coder->dim() != dim))
		ReportCorruptCold(index, BufferGetBlockNumber(npage != nullptr ? nbuf : tbuf),
		                  "coded row page in a cold tier without a quantizer");
	S5vRowsLayout l = RowsLayoutFor(dim, rows->capacity, coded_page);
	int64 k = Min((int64)(rows->capacity - rows->count), n - from);
	if (k <= 0)
		ReportCorruptCold(index, BufferGetBlockNumber(npage != nullptr ? nbuf : tbuf), "row page has no room");
	for (int64 r = from; r < from + k; r++) {
		int64 src = in.order ? in.order[r] : r;
		const float *vec = in.vecs + (Size)src * dim;
		uint8 row_flags = in.flags[src];
		int64 age = in.ages[src];
		uint16 i = rows->count;
		RowsTids(rows, l)[i] = in.tids[src];
		RowsAges(rows, l)[i] = age;
		RowsFlags(rows, l)[i] = row_flags & S5V_COLD_ROW_FLAGS;
		memcpy(RowsVectors(rows, l) + (Size)i * dim, vec, sizeof(float) * dim);
		if (coded_page) {
			// The row's code and its own error: the scan's lower bound stays true for a row outside the trained
			// range.
			uint8 *code = RowsCodes(rows, l) + (Size)i * dim;
			RowsErrors(rows, l)[i] = coder->EncodeWithError(vec, code, coder->metric());
		}
		rows->count = i + 1;
		e->rows++;
		if (!(row_flags & S5V_COLD_ROW_AGE_NULL)) {
			e->min_age = Min(e->min_age, age);
			e->max_age = Max(e->max_age, age);
		}
		if (cm != nullptr && target.count_in_meta)
			cm->cold_rows++;
	}
	edit.Finish();

	if (BufferIsValid(nbuf))
		UnlockReleaseBuffer(nbuf);
	if (BufferIsValid(tbuf))
		UnlockReleaseBuffer(tbuf);
	if (BufferIsValid(cbuf))
		UnlockReleaseBuffer(cbuf);
	if (BufferIsValid(metabuf))
		UnlockReleaseBuffer(metabuf);
	return k;
}

} // namespace

void ColdAppendRows(Relation index, uint32 dim, const ColdAppendTarget &target, uint32 list, int64 n,
                    const ColdRowsIn &in) {
	bool staging = list == S5V_STAGING_LIST;
	// Before any buffer lock: the tier's quantizer (training installs it under the cold write lock we hold).
	const s5v::ScalarQuantizer *coder = target.coder;
	if (coder == nullptr && !staging && n > 0)
		coder = LookupCoder(index, dim, target.meta_blkno);
	if (!staging && (list >= target.lists || target.centroid_head == InvalidBlockNumber))
		elog(ERROR, "s5vector: append to list %u of %u", list, target.lists);
	for (int64 done = 0; done < n;) {
		if (done > 0)
			CHECK_FOR_INTERRUPTS();
		done += AppendToOnePage(index, dim, target, list, staging, coder, done, n, in);
	}
}

void ColdAppendRow(Relation index, uint32 dim, const ColdAppendTarget &target, uint32 list, const ItemPointerData *tid,
                   int64 age, uint8 row_flags, const float *vec) {
	ColdRowsIn in{tid, &age, &row_flags, vec, nullptr};
	ColdAppendRows(index, dim, target, list, 1, in);
}

BlockNumber WriteCentroidPages(Relation index, uint32 dim, const float *centroids, uint32 lists, bool wal) {
	uint32 per = ListsPerCentroidPage(dim);
	return WriteContiguousPages(index, (lists + per - 1) / per, wal, "centroid", [&](Page page, uint32 p) {
		S5vCentroids c = (S5vCentroids)InitColdPage(page, S5V_PAGE_CENTROIDS, S5V_TUPLE_CENTROIDS);
		c->first_list = p * per;
		c->count = (uint16)Min(per, lists - p * per);
		for (uint32 s = 0; s < c->count; s++) {
			S5vListInfo e = CentroidEntry(c, s, dim);
			ResetEntry(e);
			memcpy(EntryCentroid(e), centroids + (Size)(p * per + s) * dim, sizeof(float) * dim);
		}
	});
}

void InstallLists(Relation index, uint32 dim, BlockNumber meta_blkno, BlockNumber centroid_head, uint32 lists,
                  int64 rows_added, bool clear_staging, bool wal, BlockNumber quant_head) {
	Buffer buf = ReadBuffer(index, meta_blkno);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	(void)GetColdMeta(index, BufferGetPage(buf), meta_blkno, dim, RelationGetNumberOfBlocks(index));
	PageEdit edit(index, wal);
	Page page = edit.Register(buf, false);
	S5vColdMeta cm = (S5vColdMeta)PageGetItem(page, PageGetItemId(page, FirstOffsetNumber));
	uint32 per = ListsPerCentroidPage(dim);
	cm->lists = lists;
	cm->lists_per_page = per;
	cm->centroid_pages = (lists + per - 1) / per;
	cm->centroid_head = centroid_head;
	cm->cold_rows += rows_added;
	if (rows_added < 0) // dead rows of staging that training did not carry over
		cm->dead_rows = Max((int64)0, cm->dead_rows + rows_added);
	if (clear_staging)
		ResetEntry(&cm->staging);
	if (quant_head != InvalidBlockNumber) {
		cm->cold_codes = S5V_CODES_SQ8;
		cm->quant_head = quant_head;
		cm->quant_pages = QuantizerPagesFor(dim);
	}
	edit.Finish();
	UnlockReleaseBuffer(buf);
}

// ---- readers ------------------------------------------------------------------------------------------------------

namespace {

// Heads and age ranges of every trained list (and optionally the centroids), from the centroid pages.
struct ListDirectory {
	uint32 lists;
	int64 *rows;
	BlockNumber *heads;
	uint32 *pages;
	int64 *min_age;
	int64 *max_age;
	float *centroids;   // NULL unless asked for
	BlockNumber *parts; // first part page of each list (offload.h)
};

void ReadListDirectory(Relation index, uint32 dim, const ColdTierInfo &tier, bool with_centroids, ListDirectory *out) {
	out->lists = tier.lists;
	uint32 n = Max(tier.lists, 1u);
	out->heads = (BlockNumber *)palloc(sizeof(BlockNumber) * n);
	out->rows = (int64 *)palloc(sizeof(int64) * n);
	out->pages = (uint32 *)palloc(sizeof(uint32) * n);
	out->min_age = (int64 *)palloc(sizeof(int64) * n);
	out->max_age = (int64 *)palloc(sizeof(int64) * n);
	out->centroids = with_centroids ? (float *)palloc_extended(sizeof(float) * dim * n, MCXT_ALLOC_HUGE) : nullptr;
	out->parts = (BlockNumber *)palloc(sizeof(BlockNumber) * n);
	out->parts[0] = InvalidBlockNumber;
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	for (uint32 p = 0; p < tier.centroid_pages; p++) {
		BlockNumber blk = tier.centroid_head + p;
		Buffer buf = ReadBuffer(index, blk);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		S5vCentroids c =
		    (S5vCentroids)GetColdItem(index, BufferGetPage(buf), blk, S5V_PAGE_CENTROIDS, S5V_TUPLE_CENTROIDS);
		uint32 expect = Min(tier.lists_per_page, tier.lists - p * tier.lists_per_page);
		if (c->first_list != p * tier.lists_per_page || c->count != expect)
			ReportCorruptCold(index, blk, "centroid page does not hold the lists it should");
		for (uint32 s = 0; s < c->count; s++) {
			S5vListInfo e = CentroidEntry(c, s, dim);
			CheckEntry(index, blk, e, nblocks);
			uint32 i = c->first_list + s;
			out->heads[i] = e->tail_head;
			out->parts[i] = e->parts_head;
			out->rows[i] = e->rows;
			out->pages[i] = e->tail_pages;
			out->min_age[i] = e->min_age;
			out->max_age[i] = e->max_age;
			if (with_centroids) {
				// Copied and checked in one loop the compiler can vectorise: x * 0 is 0 for every finite x and NaN
				// for an infinity or a NaN, so the sum is 0 exactly when the whole centroid is finite.
				const float *src = EntryCentroid(e);
				float *dst = out->centroids + (Size)i * dim;
				float nonfinite = 0.0f;
				for (uint32 d = 0; d < dim; d++) {
					dst[d] = src[d];
					nonfinite += src[d] * 0.0f;
				}
				if (!(nonfinite == 0.0f))
					ReportCorruptCold(index, blk, "centroid is not finite");
			}
		}
		UnlockReleaseBuffer(buf);
	}
}

// Could a list with this age range hold a row the filter matches?
bool AgeRangeMatches(const AgeFilter &f, int64 min_age, int64 max_age) {
	if (!f.active)
		return true;
	if (f.impossible || min_age > max_age)
		return false;
	return !(max_age < f.lo || min_age > f.hi);
}

// Which shared buffer held a row page when this backend last read it: a list scan pins its pages through
// ReadRecentBuffer, which checks that the buffer still holds the block (relation, fork, block, under the buffer's
// header lock) and skips the buffer mapping lookup, 15% of a Fashion-MNIST list scan (docs/benchmarks.md,
// "quantized first pass"). The table is only a hint: 64k buffer numbers (256 kB a backend, allocated on the first
// scan) at a hash of relation and block; a stale or colliding entry fails the check and costs the lookup it would
// have saved.
constexpr uint32 kRecentBuffers = 65536;
Buffer *recent_buffers;

Buffer ReadRowPageBuffer(Relation index, BlockNumber blk) {
	if (recent_buffers == nullptr)
		recent_buffers = (Buffer *)MemoryContextAllocZero(TopMemoryContext, sizeof(Buffer) * kRecentBuffers);
	uint32 h = (uint32)(((uint64)index->rd_node.relNode * UINT64CONST(0x9E3779B97F4A7C15) + blk) % kRecentBuffers);
	Buffer recent = recent_buffers[h];
	if (recent > 0 && recent <= NBuffers && ReadRecentBuffer(index->rd_node, MAIN_FORKNUM, blk, recent))
		return recent;
	Buffer buf = ReadBuffer(index, blk);
	recent_buffers[h] = buf;
	return buf;
}

// Visit every row page of the chain starting at `head` (list id `list`), share-locked one at a time: see WalkChain.
template <typename PageFn>
void WalkChainPages(Relation index, uint32 dim, BlockNumber head, uint32 list, PageFn &&fn, bool *changed = nullptr) {
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	BlockNumber blk = head;
	BlockNumber walked = 0;
	while (blk != InvalidBlockNumber) {
		CHECK_FOR_INTERRUPTS();
		walked++;
		if (blk >= nblocks || walked > nblocks) // perhaps a page appended since the size was read: read it again
			nblocks = RelationGetNumberOfBlocks(index);
		if (blk <= S5V_METAPAGE_BLKNO || blk >= nblocks || walked > nblocks)
			ReportCorruptCold(index, blk, "list chain leaves the index or loops");
		Buffer buf = ReadRowPageBuffer(index, blk);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		Page page = BufferGetPage(buf);
		if (changed != nullptr &&
		    (PageIsNew(page) || (PageGetSpecialSize(page) == MAXALIGN(sizeof(S5vPageOpaqueData)) &&
		                         S5vPageGetOpaque(page)->page_id == S5V_PAGE_ID &&
		                         (S5vPageGetOpaque(page)->page_type == S5V_PAGE_COLD_PART ||
		                          S5vPageGetOpaque(page)->page_type == S5V_PAGE_HOT)))) {
			UnlockReleaseBuffer(buf);
			*changed = true;
			return;
		}
		S5vRowsLayout l;
		S5vColdRows rows = GetColdRows(index, page, blk, dim, &l);
		if (rows->list != list)
			ReportCorruptCold(index, blk, "row page of another list");
		uint8 *flags = RowsFlags(rows, l);
		for (uint16 r = 0; r < rows->count; r++)
			if (flags[r] & ~S5V_COLD_ROW_FLAGS)
				ReportCorruptCold(index, blk, "unknown row flags");
		BlockNumber next = S5vPageGetOpaque(page)->nextblkno;
		fn(blk, rows, l);
		UnlockReleaseBuffer(buf);
		blk = next;
	}
}

// Visit every row of the chain starting at `head` (list id `list`): fn(tid, age, flags, vec) per row, one page
// share-locked at a time. A chain longer than the index (a cycle) or a page of another list is corruption.
// With `changed`, reaching a page that offload freed or reused (type S5V_PAGE_COLD_PART or, once a hot insert took
// it from the FSM, S5V_PAGE_HOT; or new) stops the walk and
// sets *changed: the list entry the caller read is older than an offload swap (a hot standby's scan, which the
// primary's WaitForScans does not see), and the caller re-reads the entry and walks again.
// (WalkChainPages is the same walk a page at a time: fn(blk, rows, layout) with the page share-locked, row flags
// checked.)
template <typename Fn>
void WalkChain(Relation index, uint32 dim, BlockNumber head, uint32 list, Fn &&fn, bool *changed = nullptr) {
	WalkChainPages(
	    index, dim, head, list,
	    [&](BlockNumber blk, S5vColdRows rows, const S5vRowsLayout &l) {
		    ItemPointer tids = RowsTids(rows, l);
		    int64 *ages = RowsAges(rows, l);
		    uint8 *flags = RowsFlags(rows, l);
		    float *vecs = RowsVectors(rows, l);
		    for (uint16 r = 0; r < rows->count; r++)
			    fn(blk, &tids[r], ages[r], flags[r], vecs + (Size)r * dim, (uint32)rows->count, r);
	    },
	    changed);
}

// A list's chain heads now (its centroid page), after WalkChain saw the chain change; XX002 after too many tries.
void RereadListHeads(Relation index, uint32 dim, const ColdTierInfo &tier, uint32 list, int attempt, BlockNumber *head,
                     BlockNumber *parts) {
	BlockNumber cblk = tier.centroid_head + list / tier.lists_per_page;
	if (attempt >= 16)
		ReportCorruptCold(index, cblk, "list chain reaches a freed page again and again");
	uint32 slot = list % tier.lists_per_page;
	Buffer buf = ReadBuffer(index, cblk);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	S5vCentroids c =
	    (S5vCentroids)GetColdItem(index, BufferGetPage(buf), cblk, S5V_PAGE_CENTROIDS, S5V_TUPLE_CENTROIDS);
	if (c->first_list != list - slot || slot >= c->count)
		ReportCorruptCold(index, cblk, "centroid page does not hold the list it should");
	S5vListInfo e = CentroidEntry(c, slot, dim);
	*head = e->tail_head;
	*parts = e->parts_head;
	UnlockReleaseBuffer(buf);
}

bool RowMatches(const AgeFilter &filter, int64 age, uint8 flags) {
	if (flags & S5V_COLD_ROW_DEAD)
		return false;
	return filter.Matches(age, (flags & S5V_COLD_ROW_AGE_NULL) ? S5V_ELEMENT_AGE_NULL : 0);
}

} // namespace

int64 ColdCollectRows(Relation index, const IndexInfoCache &info, const AgeFilter &filter, const float *query,
                      ColdRow **out) {
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	ColdTierInfo tier;
	ReadColdTier(index, meta, info.dimensions, &tier);
	int64 cap = 256, n = 0;
	ColdRow *rows = (ColdRow *)palloc_extended(sizeof(ColdRow) * cap, MCXT_ALLOC_HUGE);
	*out = rows;
	if (tier.meta_blkno == InvalidBlockNumber)
		return 0;
	BlockNumber heap_nblocks = 0;
	auto collect = [&](BlockNumber, ItemPointer tid, int64 age, uint8 flags, const float *vec, uint32, uint16) {
		if (!RowMatches(filter, age, flags))
			return;
		CheckHeapTid(index, tid, &heap_nblocks);
		if (n == cap) {
			cap *= 2;
			rows = (ColdRow *)repalloc_huge(rows, sizeof(ColdRow) * cap);
		}
		rows[n].distance = query ? s5v::IndexDistance(info.metric, query, vec, info.dimensions) : 0.0f;
		rows[n].tid = *tid;
		n++;
	};
	if (AgeRangeMatches(filter, tier.staging.min_age, tier.staging.max_age) || !filter.active)
		WalkChain(index, info.dimensions, tier.staging.tail_head, S5V_STAGING_LIST, collect);
	if (tier.lists > 0) {
		ListDirectory dir;
		ReadListDirectory(index, info.dimensions, tier, false, &dir);
		bool warned = false;
		for (uint32 i = 0; i < dir.lists; i++)
			if (AgeRangeMatches(filter, dir.min_age[i], dir.max_age[i])) {
				int64 n0 = n;
				for (int attempt = 0;; attempt++) {
					bool changed = false;
					WalkChain(index, info.dimensions, dir.heads[i], i, collect, &changed);
					if (!changed)
						break;
					n = n0;
					RereadListHeads(index, info.dimensions, tier, i, attempt, &dir.heads[i], &dir.parts[i]);
				}
				if (dir.parts[i] == InvalidBlockNumber)
					continue;
				// Remote parts: TIDs from their pages; distances need the vectors (fetched, verified).
				PartInfo *parts;
				int np = ReadPartChain(index, dir.parts[i], i, &parts);
				float **vecs = (float **)palloc0(sizeof(float *) * Max(np, 1));
				if (query != nullptr)
					FetchPartVectors(index, info, parts, np, vecs, &warned);
				for (int p = 0; p < np; p++) {
					if (query != nullptr && vecs[p] == nullptr)
						continue;
					for (uint32 r = 0; r < parts[p].rows; r++)
						collect(parts[p].blkno, &parts[p].tids[r], parts[p].ages[r], parts[p].flags[r],
						        query ? vecs[p] + (Size)r * info.dimensions : nullptr, parts[p].rows, (uint16)r);
				}
			}
	}
	*out = rows;
	return n;
}

int ColdChainHeads(Relation index, uint32 dim, const ColdTierInfo &tier, BlockNumber **heads, uint32 **lists) {
	int n = 1 + (int)tier.lists;
	*heads = (BlockNumber *)palloc(sizeof(BlockNumber) * n);
	*lists = (uint32 *)palloc(sizeof(uint32) * n);
	(*heads)[0] = tier.staging.tail_head;
	(*lists)[0] = S5V_STAGING_LIST;
	if (tier.lists > 0) {
		ListDirectory dir;
		ReadListDirectory(index, dim, tier, false, &dir);
		for (uint32 i = 0; i < tier.lists; i++) {
			(*heads)[1 + i] = dir.heads[i];
			(*lists)[1 + i] = i;
		}
	}
	return n;
}

namespace {
int CompareU64(const void *a, const void *b) {
	uint64 x = *(const uint64 *)a, y = *(const uint64 *)b;
	return x < y ? -1 : x > y ? 1 : 0;
}
} // namespace

void ColdVerify(Relation index, const IndexInfoCache &info, ColdVerifyResult *out) {
	memset(out, 0, sizeof(*out));
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	ColdTierInfo tier;
	ReadColdTier(index, meta, info.dimensions, &tier);
	if (tier.meta_blkno == InvalidBlockNumber)
		return;
	out->exists = true;
	out->lists = tier.lists;
	out->meta_rows = tier.cold_rows;
	out->meta_dead = tier.dead_rows;
	out->rebalance_pending = tier.rebalance_pending != 0;
	ListDirectory dir;
	dir.lists = 0;
	if (tier.lists > 0)
		ReadListDirectory(index, info.dimensions, tier, false, &dir);
	int64 cap = 1024, n = 0;
	uint64 *keys = (uint64 *)palloc_extended(sizeof(uint64) * cap, MCXT_ALLOC_HUGE);
	for (int64 c = -1; c < (int64)tier.lists; c++) {
		bool staging = c < 0;
		BlockNumber head = staging ? tier.staging.tail_head : dir.heads[c];
		int64 want = staging ? tier.staging.rows : dir.rows[c];
		int64 lo = staging ? tier.staging.min_age : dir.min_age[c];
		int64 hi = staging ? tier.staging.max_age : dir.max_age[c];
		int64 got = 0;
		WalkChain(index, info.dimensions, head, staging ? S5V_STAGING_LIST : (uint32)c,
		          [&](BlockNumber, ItemPointer tid, int64 age, uint8 flags, const float *, uint32, uint16) {
			          got++;
			          if (!(flags & S5V_COLD_ROW_AGE_NULL) && (age < lo || age > hi))
				          out->bad_age_ranges++;
			          if (flags & S5V_COLD_ROW_DEAD) {
				          out->dead++;
				          return;
			          }
			          if (n == cap) {
				          cap *= 2;
				          keys = (uint64 *)repalloc_huge(keys, sizeof(uint64) * cap);
			          }
			          keys[n++] = ((uint64)ItemPointerGetBlockNumberNoCheck(tid) << 16) |
			                      ItemPointerGetOffsetNumberNoCheck(tid);
		          });
		BlockNumber phead = staging ? InvalidBlockNumber : dir.parts[c];
		if (phead != InvalidBlockNumber) {
			PartInfo *parts;
			int np = ReadPartChain(index, phead, (uint32)c, &parts);
			for (int p = 0; p < np; p++)
				for (uint32 r = 0; r < parts[p].rows; r++) {
					uint8 flags = parts[p].flags[r];
					got++;
					if (!(flags & S5V_COLD_ROW_AGE_NULL) && (parts[p].ages[r] < lo || parts[p].ages[r] > hi))
						out->bad_age_ranges++;
					if (flags & S5V_COLD_ROW_DEAD) {
						out->dead++;
						continue;
					}
					if (n == cap) {
						cap *= 2;
						keys = (uint64 *)repalloc_huge(keys, sizeof(uint64) * cap);
					}
					keys[n++] = ((uint64)ItemPointerGetBlockNumberNoCheck(&parts[p].tids[r]) << 16) |
					            ItemPointerGetOffsetNumberNoCheck(&parts[p].tids[r]);
				}
		}
		out->rows += got;
		if (got != want)
			out->bad_list_counters++;
	}
	qsort(keys, n, sizeof(uint64), CompareU64);
	for (int64 i = 1; i < n; i++)
		if (keys[i] == keys[i - 1])
			out->duplicate_tids++;
	pfree(keys);
}

int64 ColdReadStaging(Relation index, uint32 dim, const ColdTierInfo &tier, ItemPointerData **tids, int64 **ages,
                      uint8 **flags, float **vecs) {
	int64 cap = Max(tier.staging.rows, (int64)1), n = 0;
	*tids = (ItemPointerData *)palloc_extended(sizeof(ItemPointerData) * cap, MCXT_ALLOC_HUGE);
	*ages = (int64 *)palloc_extended(sizeof(int64) * cap, MCXT_ALLOC_HUGE);
	*flags = (uint8 *)palloc_extended(cap, MCXT_ALLOC_HUGE);
	*vecs = (float *)palloc_extended(sizeof(float) * dim * cap, MCXT_ALLOC_HUGE);
	WalkChain(index, dim, tier.staging.tail_head, S5V_STAGING_LIST,
	          [&](BlockNumber blk, ItemPointer tid, int64 age, uint8 f, const float *vec, uint32, uint16) {
		          if (f & S5V_COLD_ROW_DEAD)
			          return;
		          if (n >= cap)
			          ReportCorruptCold(index, blk, "staging list holds more rows than its counter");
		          (*tids)[n] = *tid;
		          (*ages)[n] = age;
		          (*flags)[n] = f;
		          memcpy(*vecs + (Size)n * dim, vec, sizeof(float) * dim);
		          n++;
	          });
	return n;
}

uint32 ColdNearestList(Relation index, const IndexInfoCache &info, const ColdTierInfo &tier, const float *vec) {
	uint32 dim = info.dimensions;
	uint32 best = 0;
	float best_d = 0;
	for (uint32 p = 0; p < tier.centroid_pages; p++) {
		BlockNumber blk = tier.centroid_head + p;
		Buffer buf = ReadBuffer(index, blk);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		S5vCentroids c =
		    (S5vCentroids)GetColdItem(index, BufferGetPage(buf), blk, S5V_PAGE_CENTROIDS, S5V_TUPLE_CENTROIDS);
		if (c->first_list != p * tier.lists_per_page || c->count > tier.lists_per_page)
			ReportCorruptCold(index, blk, "centroid page does not hold the lists it should");
		for (uint32 s = 0; s < c->count; s++) {
			float d = s5v::IndexDistance(info.metric, vec, EntryCentroid(CentroidEntry(c, s, dim)), dim);
			uint32 i = c->first_list + s;
			if ((i == 0 && p == 0 && s == 0) || d < best_d) {
				best = i;
				best_d = d;
			}
		}
		UnlockReleaseBuffer(buf);
	}
	return best;
}

// ---- the InvertedLists of a scan ----------------------------------------------------------------------------------

struct PageColdLists::State {
	Relation index;
	IndexInfoCache info;
	AgeFilter filter;
	bool staging;
	MemoryContext cxt;
	ColdTierInfo tier;
	uint32 nlists;
	ListDirectory dir; // trained lists; for staging one entry
	// The list loaded last: its rows, cut into chunks at page boundaries.
	int64 loaded;
	uint32 nchunks;
	uint32 chunk_cap;
	int64 *chunk_start; // nchunks + 1 row offsets
	int64 nrows;
	int64 row_cap;
	uint64 *ids;
	int64 *ages;
	uint8 *live;
	float *vecs;  // without a query (ScoresQuery not called): the rows' vectors
	float *dists; // with a query: each row's distance to it, computed from the page (no copy of the vector)
	const float *query;
	s5v::Metric metric;
	BlockNumber heap_nblocks;
	// Remote parts (offload.h): fetched by Prefetch (one parallel download for the lists of a call: a round, or every
	// round the stream expects to read, IvfSearchParams::lookahead_rows), or by the list's load when it was not
	// prefetched; one WARNING per scan under on_s5_error = warning. A prefetched list's entry stays until its load
	// takes it (its vectors are freed then).
	bool warned;
	int npre;
	int pre_cap;
	uint32 *pre_list;
	int *pre_n;
	PartInfo **pre_parts;
	float ***pre_vecs;
	// Codes (docs/architecture.md "Quantized first pass"): with the tier's quantizer (quant_params, read by Open) and
	// a query, a coded page's rows are estimated from their codes; a row's exact distance is computed (from its
	// vector on the same pinned page) only when its lower bound may enter the exact_rows nearest seen so far (best[],
	// sorted), else it is handed out as a lower bound (exact 0) with its place (locs: block << 16 | slot) for
	// ExactDistance.
	float *quant_params;         // lo then step (dim floats each); NULL: no codes
	s5v::ScalarQuantizer *quant; // made by ScoresQuery (C++ side), deleted with the lists
	s5v::QuantizedQuery *qq;
	uint32 exact_rows;
	uint32 nbest;
	float *best;  // exact_rows entries
	float *est;   // one page's estimates
	uint8 *exact; // per row (quant only)
	uint64 *locs;
	bool force_exact; // ExactDistance's fallback reload: every row exact
	int64 lazy_rows;  // rows handed out as bounds (stats)
};

namespace {

void OpenColdState(PageColdLists::State *s, bool *has_rows) {
	MemoryContext old = MemoryContextSwitchTo(s->cxt);
	S5vMetaPageData meta;
	ReadMetaPage(s->index, &meta);
	ReadColdTier(s->index, meta, s->info.dimensions, &s->tier);
	*has_rows = false;
	s->loaded = -1;
	if (s->tier.meta_blkno != InvalidBlockNumber) {
		if (s->staging) {
			s->nlists = 1;
			uint32 dim = s->info.dimensions;
			s->dir.lists = 1;
			s->dir.heads = (BlockNumber *)palloc(sizeof(BlockNumber));
			s->dir.pages = (uint32 *)palloc(sizeof(uint32));
			s->dir.min_age = (int64 *)palloc(sizeof(int64));
			s->dir.max_age = (int64 *)palloc(sizeof(int64));
			s->dir.centroids = (float *)palloc0(sizeof(float) * dim);
			s->dir.heads[0] = s->tier.staging.tail_head;
			s->dir.pages[0] = s->tier.staging.tail_pages;
			s->dir.min_age[0] = s->tier.staging.min_age;
			s->dir.max_age[0] = s->tier.staging.max_age;
			*has_rows = s->tier.staging.rows > 0 &&
			            (!s->filter.active || AgeRangeMatches(s->filter, s->dir.min_age[0], s->dir.max_age[0]));
		} else if (s->tier.lists > 0) {
			ReadListDirectory(s->index, s->info.dimensions, s->tier, true, &s->dir);
			if (s->tier.cold_codes != S5V_CODES_NONE) {
				uint32 dim = s->info.dimensions;
				s->quant_params = (float *)palloc(sizeof(float) * 2 * dim);
				(void)ReadColdQuantizer(s->index, dim, s->tier, s->quant_params, s->quant_params + dim);
			}
			s->nlists = s->tier.lists;
			for (uint32 i = 0; i < s->nlists && !*has_rows; i++)
				*has_rows = (s->dir.heads[i] != InvalidBlockNumber || s->dir.parts[i] != InvalidBlockNumber) &&
				            AgeRangeMatches(s->filter, s->dir.min_age[i], s->dir.max_age[i]);
		}
	}
	MemoryContextSwitchTo(old);
}

// Room for `need` rows in the state's row arrays.
void GrowColdRows(PageColdLists::State *s, int64 need) {
	if (need <= s->row_cap)
		return;
	uint32 dim = s->info.dimensions;
	while (s->row_cap < need)
		s->row_cap *= 2;
	s->ids = (uint64 *)repalloc_huge(s->ids, sizeof(uint64) * s->row_cap);
	s->ages = (int64 *)repalloc_huge(s->ages, sizeof(int64) * s->row_cap);
	s->live = (uint8 *)repalloc_huge(s->live, s->row_cap);
	if (s->query != nullptr)
		s->dists = (float *)repalloc_huge(s->dists, sizeof(float) * s->row_cap);
	else
		s->vecs = (float *)repalloc_huge(s->vecs, sizeof(float) * dim * s->row_cap);
	if (s->exact != nullptr) {
		s->exact = (uint8 *)repalloc_huge(s->exact, s->row_cap);
		s->locs = (uint64 *)repalloc_huge(s->locs, sizeof(uint64) * s->row_cap);
	}
}

// An exact distance of this scan: it joins the exact_rows nearest (best[], sorted) if it is among them.
void NoteExact(PageColdLists::State *s, float d) {
	if (s->best == nullptr || s->force_exact)
		return;
	if (s->nbest == s->exact_rows) {
		if (!(d < s->best[s->nbest - 1]))
			return;
		s->nbest--;
	}
	uint32 at = s->nbest;
	while (at > 0 && s->best[at - 1] > d) {
		s->best[at] = s->best[at - 1];
		at--;
	}
	s->best[at] = d;
	s->nbest++;
}

// Copy list `list`'s rows into the state's arrays (live = not dead and matching the age filter).
void LoadColdList(PageColdLists::State *s, uint32 list) {
	MemoryContext old = MemoryContextSwitchTo(s->cxt);
	uint32 dim = s->info.dimensions;
	s->nrows = 0;
	s->nchunks = 0;
	if (s->chunk_start == nullptr) {
		s->chunk_cap = 16;
		s->chunk_start = (int64 *)palloc(sizeof(int64) * (s->chunk_cap + 1));
		s->row_cap = 64;
		s->ids = (uint64 *)palloc(sizeof(uint64) * s->row_cap);
		s->ages = (int64 *)palloc(sizeof(int64) * s->row_cap);
		s->live = (uint8 *)palloc(s->row_cap);
		if (s->query != nullptr)
			s->dists = (float *)palloc(sizeof(float) * s->row_cap);
		else
			s->vecs = (float *)palloc(sizeof(float) * dim * s->row_cap);
		if (s->qq != nullptr && s->query != nullptr) {
			s->exact = (uint8 *)palloc(s->row_cap);
			s->locs = (uint64 *)palloc(sizeof(uint64) * s->row_cap);
			s->est = (float *)palloc(sizeof(float) * RowsPerPage(dim, true));
			s->best = (float *)palloc(sizeof(float) * Max(s->exact_rows, 1u));
		}
	}
	if (!s->staging && s->dir.rows != nullptr)
		GrowColdRows(s, s->dir.rows[list] + s->dir.rows[list] / 8); // the list's size as its entry said: no regrowth
	uint32 id = s->staging ? S5V_STAGING_LIST : list;
	BlockNumber last_blk;
	for (int attempt = 0;; attempt++) {
		s->nrows = 0;
		s->nchunks = 0;
		s->chunk_start[0] = 0;
		last_blk = InvalidBlockNumber;
		bool changed = false;
		WalkChainPages(
		    s->index, dim, s->dir.heads[list], id,
		    [&](BlockNumber blk, S5vColdRows rows, const S5vRowsLayout &l) {
			    if (last_blk != InvalidBlockNumber) {
				    if (s->nchunks + 1 >= s->chunk_cap) {
					    s->chunk_cap *= 2;
					    s->chunk_start = (int64 *)repalloc(s->chunk_start, sizeof(int64) * (s->chunk_cap + 1));
				    }
				    s->chunk_start[++s->nchunks] = s->nrows;
			    }
			    last_blk = blk;
			    GrowColdRows(s, s->nrows + rows->count);
			    ItemPointer tids = RowsTids(rows, l);
			    int64 *ages = RowsAges(rows, l);
			    uint8 *flags = RowsFlags(rows, l);
			    float *vecs = RowsVectors(rows, l);
			    bool coded =
			        l.codes != 0 && s->qq != nullptr && s->exact != nullptr && s->query != nullptr && !s->force_exact;
			    float *errors = coded ? RowsErrors(rows, l) : nullptr;
			    if (coded)
				    s->quant->Distances(*s->qq, RowsCodes(rows, l), rows->count, dim, s->est);
			    for (uint16 r = 0; r < rows->count; r++) {
				    ItemPointer tid = &tids[r];
				    const float *vec = vecs + (Size)r * dim;
				    bool live = RowMatches(s->filter, ages[r], flags[r]);
				    if (live)
					    CheckHeapTid(s->index, tid, &s->heap_nblocks);
				    int64 i = s->nrows++;
				    s->ids[i] =
				        ((uint64)ItemPointerGetBlockNumberNoCheck(tid) << 16) | ItemPointerGetOffsetNumberNoCheck(tid);
				    s->ages[i] = ages[r];
				    s->live[i] = live ? 1 : 0;
				    if (s->query == nullptr) {
					    memcpy(s->vecs + (Size)i * dim, vec, sizeof(float) * dim);
					    continue;
				    }
				    if (s->exact != nullptr) {
					    s->exact[i] = 1;
					    s->locs[i] = 0;
				    }
				    if (!live) {
					    s->dists[i] = 0.0f;
					    continue;
				    }
				    if (coded) {
					    if (!(errors[r] >= 0.0f) || !std::isfinite(errors[r]))
						    ReportCorruptCold(s->index, blk, "row code error not a finite non-negative number");
					    float lb = s5v::ScalarQuantizer::LowerBound(*s->qq, s->est[r], errors[r]);
					    if (s->nbest >= s->exact_rows && lb >= s->best[s->nbest - 1]) {
						    s->dists[i] = lb;
						    s->exact[i] = 0;
						    s->locs[i] = ((uint64)blk << 16) | r;
						    s->lazy_rows++;
						    continue;
					    }
				    }
				    float d = s5v::IndexDistance(s->metric, s->query, vec, dim);
				    s->dists[i] = d;
				    if (s->qq != nullptr)
					    NoteExact(s, d);
			    }
		    },
		    s->staging ? nullptr : &changed);
		if (!changed)
			break;
		// An offload swapped a prefix of this list into a part after the entry was read: read it again, and drop what
		// was prefetched for the list (its part chain lacks the new part).
		RereadListHeads(s->index, dim, s->tier, list, attempt, &s->dir.heads[list], &s->dir.parts[list]);
		for (int k = 0; k < s->npre; k++)
			if (s->pre_list[k] == list)
				s->pre_list[k] = PG_UINT32_MAX;
	}
	if (last_blk != InvalidBlockNumber)
		s->chunk_start[++s->nchunks] = s->nrows;
	// Remote parts, one chunk each: prefetched by the round, else fetched now.
	if (!s->staging && s->dir.parts[list] != InvalidBlockNumber) {
		int np = -1;
		PartInfo *parts = nullptr;
		float **vecs = nullptr;
		int taken = -1;
		for (int k = 0; k < s->npre; k++)
			if (s->pre_list[k] == list) {
				np = s->pre_n[k];
				parts = s->pre_parts[k];
				vecs = s->pre_vecs[k];
				taken = k;
			}
		if (taken >= 0)
			s->pre_list[taken] = PG_UINT32_MAX; // loaded once: its vectors are freed below
		if (np < 0) {
			np = ReadPartChain(s->index, s->dir.parts[list], list, &parts);
			vecs = (float **)palloc0(sizeof(float *) * Max(np, 1));
			FetchPartVectors(s->index, s->info, parts, np, vecs, &s->warned);
		}
		for (int p = 0; p < np; p++) {
			if (vecs[p] == nullptr)
				continue; // not reachable, on_s5_error = warning
			for (uint32 r = 0; r < parts[p].rows; r++) {
				GrowColdRows(s, s->nrows + 1);
				ItemPointer tid = &parts[p].tids[r];
				bool live = RowMatches(s->filter, parts[p].ages[r], parts[p].flags[r]);
				if (live)
					CheckHeapTid(s->index, tid, &s->heap_nblocks);
				int64 i = s->nrows++;
				s->ids[i] =
				    ((uint64)ItemPointerGetBlockNumberNoCheck(tid) << 16) | ItemPointerGetOffsetNumberNoCheck(tid);
				s->ages[i] = parts[p].ages[r];
				s->live[i] = live ? 1 : 0;
				const float *vec = vecs[p] + (Size)r * dim;
				if (s->exact != nullptr) {
					s->exact[i] = 1;
					s->locs[i] = 0;
				}
				if (s->query == nullptr)
					memcpy(s->vecs + (Size)i * dim, vec, sizeof(float) * dim);
				else
					s->dists[i] = live ? s5v::IndexDistance(s->metric, s->query, vec, dim) : 0.0f;
			}
			if (s->nchunks + 1 >= s->chunk_cap) {
				s->chunk_cap *= 2;
				s->chunk_start = (int64 *)repalloc(s->chunk_start, sizeof(int64) * (s->chunk_cap + 1));
			}
			s->chunk_start[++s->nchunks] = s->nrows;
		}
		for (int p = 0; p < np; p++)
			if (vecs[p] != nullptr) {
				pfree(vecs[p]);
				vecs[p] = nullptr;
			}
	}
	s->loaded = list;
	MemoryContextSwitchTo(old);
}

// The exact distance of a row the page walk handed out as a lower bound (PageColdLists::ExactDistance). The row is
// looked for on the page the walk saw it on (its slot, or elsewhere on the page after a VACUUM compaction slid it
// down); when the page is no longer a row page of the list or does not hold the row (a hot standby's scan during
// an offload, a VACUUM that dropped it), the list is read again with exact distances and the row looked for there.
// *found false: the row is gone or dead now (not to be handed out).
void ResolveColdRow(PageColdLists::State *s, uint32 list, uint64 id, uint64 loc, float *out, bool *found) {
	*found = false;
	uint32 dim = s->info.dimensions;
	BlockNumber blk = (BlockNumber)(loc >> 16);
	uint32 slot = (uint32)(loc & 0xffff);
	bool located = false;
	if (blk > S5V_METAPAGE_BLKNO && blk < RelationGetNumberOfBlocks(s->index)) {
		Buffer buf = ReadBuffer(s->index, blk);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		Page page = BufferGetPage(buf);
		if (!PageIsNew(page) && PageGetSpecialSize(page) == MAXALIGN(sizeof(S5vPageOpaqueData)) &&
		    S5vPageGetOpaque(page)->page_id == S5V_PAGE_ID && S5vPageGetOpaque(page)->page_type == S5V_PAGE_COLD_ROWS) {
			S5vRowsLayout l;
			S5vColdRows rows = GetColdRows(s->index, page, blk, dim, &l);
			if (rows->list == list) {
				ItemPointer tids = RowsTids(rows, l);
				auto key = [&](uint16 r) {
					return ((uint64)ItemPointerGetBlockNumberNoCheck(&tids[r]) << 16) |
					       ItemPointerGetOffsetNumberNoCheck(&tids[r]);
				};
				int at = -1;
				if (slot < rows->count && key((uint16)slot) == id)
					at = (int)slot;
				for (uint16 r = 0; at < 0 && r < rows->count; r++)
					if (key(r) == id)
						at = r;
				if (at >= 0) {
					located = true;
					uint8 flags = RowsFlags(rows, l)[at];
					if (RowMatches(s->filter, RowsAges(rows, l)[at], flags)) {
						*out = s5v::IndexDistance(s->metric, s->query, RowsVectors(rows, l) + (Size)at * dim, dim);
						*found = true;
					}
				}
			}
		}
		UnlockReleaseBuffer(buf);
	}
	if (located)
		return;
	s->force_exact = true;
	LoadColdList(s, list);
	s->force_exact = false;
	for (int64 i = 0; i < s->nrows; i++)
		if (s->ids[i] == id && s->live[i]) {
			*out = s->dists[i];
			*found = true;
			break;
		}
	s->loaded = -1; // its arrays now hold the exact reload
}

// The remote parts of the lists the stream will read next, fetched together (one DownloadMany for every cache miss).
// Lists prefetched by an earlier call and not loaded yet are not fetched again.
void PrefetchColdParts(PageColdLists::State *s, const ivf::ListId *lists, int nlists) {
	if (s->staging || nlists <= 0)
		return;
	MemoryContext old = MemoryContextSwitchTo(s->cxt);
	if (s->npre + nlists > s->pre_cap) {
		int cap = Max(s->npre + nlists, Max(2 * s->pre_cap, 8));
		if (s->pre_cap == 0) {
			s->pre_list = (uint32 *)palloc(sizeof(uint32) * cap);
			s->pre_n = (int *)palloc(sizeof(int) * cap);
			s->pre_parts = (PartInfo **)palloc(sizeof(PartInfo *) * cap);
			s->pre_vecs = (float ***)palloc(sizeof(float **) * cap);
		} else {
			s->pre_list = (uint32 *)repalloc(s->pre_list, sizeof(uint32) * cap);
			s->pre_n = (int *)repalloc(s->pre_n, sizeof(int) * cap);
			s->pre_parts = (PartInfo **)repalloc(s->pre_parts, sizeof(PartInfo *) * cap);
			s->pre_vecs = (float ***)repalloc(s->pre_vecs, sizeof(float **) * cap);
		}
		s->pre_cap = cap;
	}
	int first = s->npre;
	int total = 0;
	for (int k = 0; k < nlists; k++) {
		uint32 list = lists[k];
		if (list >= s->nlists || s->dir.parts[list] == InvalidBlockNumber ||
		    !AgeRangeMatches(s->filter, s->dir.min_age[list], s->dir.max_age[list]))
			continue;
		bool pending = false;
		for (int j = 0; j < s->npre && !pending; j++)
			pending = s->pre_list[j] == list;
		if (pending)
			continue;
		int j = s->npre++;
		s->pre_list[j] = list;
		s->pre_n[j] = ReadPartChain(s->index, s->dir.parts[list], list, &s->pre_parts[j]);
		total += s->pre_n[j];
	}
	if (total > 0) {
		PartInfo *all = (PartInfo *)palloc(sizeof(PartInfo) * total);
		float **vecs = (float **)palloc0(sizeof(float *) * total);
		int at = 0;
		for (int j = first; j < s->npre; j++) {
			memcpy(all + at, s->pre_parts[j], sizeof(PartInfo) * s->pre_n[j]);
			s->pre_vecs[j] = vecs + at;
			at += s->pre_n[j];
		}
		FetchPartVectors(s->index, s->info, all, total, vecs, &s->warned);
		pfree(all);
	} else {
		for (int j = first; j < s->npre; j++)
			s->pre_vecs[j] = nullptr;
	}
	MemoryContextSwitchTo(old);
}

} // namespace

PageColdLists::PageColdLists(Relation index, const IndexInfoCache &info, const AgeFilter &filter, bool staging,
                             MemoryContext cxt)
    : state_(new State()), dim_(info.dimensions) {
	state_->index = index;
	state_->info = info;
	state_->filter = filter;
	state_->staging = staging;
	state_->cxt = cxt;
	state_->loaded = -1;
	state_->exact_rows = 10;
}

PageColdLists::~PageColdLists() {
	// The arrays are palloc'd in the scan's context and go with it.
	delete state_->qq;
	delete state_->quant;
	delete state_;
}

Status PageColdLists::Fail(Status st) {
	if (!st.ok() && failed_.ok())
		failed_ = st;
	return st;
}

Status PageColdLists::Open(bool &has_rows) {
	bool has = false;
	State *s = state_;
	Status st;
	S5V_PG_CALL(st, OpenColdState(s, &has));
	has_rows = st.ok() && has;
	return Fail(st);
}

std::size_t PageColdLists::list_count() const {
	return state_->nlists;
}

Status PageColdLists::Centroids(std::span<const float> &out) {
	if (!failed_.ok())
		return failed_;
	out = std::span<const float>(state_->dir.centroids, (std::size_t)state_->nlists * dim_);
	return Status::Ok();
}

Status PageColdLists::ChunkCount(ivf::ListId list, std::size_t &out) {
	if (!failed_.ok())
		return failed_;
	State *s = state_;
	if (list >= s->nlists)
		return Status::InvalidInput("no such cold list");
	out = 0;
	if ((s->dir.heads[list] == InvalidBlockNumber && (s->staging || s->dir.parts[list] == InvalidBlockNumber)) ||
	    !AgeRangeMatches(s->filter, s->dir.min_age[list], s->dir.max_age[list]))
		return Status::Ok();
	if (s->loaded != (int64)list) {
		Status st;
		S5V_PG_CALL(st, LoadColdList(s, list));
		if (!st.ok())
			return Fail(st);
	}
	out = s->nchunks;
	return Status::Ok();
}

bool PageColdLists::ScoresQuery(s5v::Metric metric, std::span<const float> query) {
	State *s = state_;
	if (query.size() != dim_ || (s->query == nullptr && s->chunk_start != nullptr))
		return false; // rows already loaded with their vectors: keep handing those out
	s->metric = metric;
	s->query = query.data();
	s->loaded = -1; // distances to another query
	s->nbest = 0;
	delete s->qq;
	delete s->quant;
	s->qq = nullptr;
	s->quant = nullptr;
	if (s->quant_params != nullptr && metric == s->info.metric) {
		// Codes for this query; without them (an error here) every row is scored exactly, as on an uncoded tier.
		try {
			auto q = std::make_unique<s5v::ScalarQuantizer>();
			auto qq = std::make_unique<s5v::QuantizedQuery>();
			if (q->Load(metric, std::span<const float>(s->quant_params, dim_),
			            std::span<const float>(s->quant_params + dim_, dim_))
			        .ok() &&
			    q->Prepare(query, *qq).ok()) {
				s->quant = q.release();
				s->qq = qq.release();
			}
		} catch (...) {
		}
	}
	return true;
}

void PageColdLists::SetExactRows(std::size_t rows) {
	state_->exact_rows = (uint32)std::min<std::size_t>(std::max<std::size_t>(rows, 1), 100000);
}

Status PageColdLists::ExactDistance(ivf::ListId list, RowId id, std::uint64_t loc, float &out, bool &found) {
	if (!failed_.ok())
		return failed_;
	State *s = state_;
	if (list >= s->nlists || s->query == nullptr)
		return Status::InvalidInput("exact distance asked for a row of no cold list");
	float d = 0.0f;
	bool f = false;
	Status st;
	S5V_PG_CALL(st, ResolveColdRow(s, list, id, loc, &d, &f));
	if (!st.ok())
		return Fail(st);
	out = d;
	found = f;
	return Status::Ok();
}

Status PageColdLists::Prefetch(std::span<const ivf::ListId> lists) {
	if (!failed_.ok())
		return failed_;
	State *s = state_;
	const ivf::ListId *data = lists.data();
	int n = (int)lists.size();
	Status st;
	S5V_PG_CALL(st, PrefetchColdParts(s, data, n));
	return Fail(st);
}

Status PageColdLists::GetChunk(ivf::ListId list, std::size_t index, ivf::ListChunk &out) {
	if (!failed_.ok())
		return failed_;
	State *s = state_;
	if (s->loaded != (int64)list || index >= s->nchunks)
		return Status::InvalidInput("cold list chunk asked for before its list was counted");
	int64 begin = s->chunk_start[index], end = s->chunk_start[index + 1];
	std::size_t n = (std::size_t)(end - begin);
	out.list = list;
	out.index = index;
	out.ids = std::span<const RowId>(s->ids + begin, n);
	out.ages = std::span<const std::int64_t>(s->ages + begin, n);
	if (s->query != nullptr) {
		out.distances = std::span<const float>(s->dists + begin, n);
		if (s->exact != nullptr) {
			out.exact = std::span<const std::uint8_t>(s->exact + begin, n);
			out.locs = std::span<const std::uint64_t>(s->locs + begin, n);
		}
	} else
		out.vectors = std::span<const float>(s->vecs + (Size)begin * dim_, n * dim_);
	out.live = std::span<const std::uint8_t>(s->live + begin, n);
	out.token = 1;
	return Status::Ok();
}

} // namespace s5v::pg
