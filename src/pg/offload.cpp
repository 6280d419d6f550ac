// Offload of sealed cold parts to S5 (TIERS.md "Seal and offload a list part"; docs/s5.md "Offload"):
//   1. seal: a prefix of a list's row-page chain that never receives rows again (every page before the tail page,
//      where appends go), of at most one part page's rows (RowsPerPart) and at least an eighth of that, is chosen and
//      copied under the cold write lock. Such pages are already immutable but for VACUUM's dead flags, so sealing
//      needs no record of its own: the swap below re-reads them under the lock.
//   2. outside every lock: encode (segment format), encrypt with a fresh key, compute the CIDs;
//   3. intent: "upload pending: blob" in the GC queue (WAL, flushed) before the upload;
//   4. upload, the node's CID checked against ours (S5Client::Upload);
//   5. swap (one Generic WAL record: cold metapage counters, list entry, new part page with TIDs/ages/flags + the
//      encrypted CID, the GC queue page whose pending entry goes);
//   6. WaitForScans, then the row pages are freed (re-initialised as free pages, WAL, FSM).
// A crash before 5 leaves the local rows referenced and a pending entry (an orphan for GC); after 5 the part is
// referenced; between 5 and 6 the old row pages are leaked (unreferenced, never read).
extern "C" {
#include "postgres.h"

#include "access/generic_xlog.h"
#include "access/relation.h"
#include "access/xlog.h"
#include "catalog/pg_am.h"
#include "commands/defrem.h"
#include "commands/vacuum.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/indexfsm.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

#include "pg/open_index.h"
#include "pg/build_journal.h"
#include "pg/cold_store.h"
#include "pg/guard.h"
#include "pg/gucs.h"
#include "pg/locks.h"
#include "pg/offload.h"
#include "pg/s5_glue.h"

#include "core/s5/encryption.h"
#include "core/s5/segment.h"

#include <cstring>
#include <string>
#include <vector>

extern "C" {
PG_FUNCTION_INFO_V1(s5vector_offload);
PG_FUNCTION_INFO_V1(s5vector_prewarm);
PG_FUNCTION_INFO_V1(s5vector_cache_reset);
PG_FUNCTION_INFO_V1(s5vector_gc);
PGDLLEXPORT Datum s5vector_gc(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum s5vector_offload(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum s5vector_prewarm(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum s5vector_cache_reset(PG_FUNCTION_ARGS);
}

namespace s5v::pg {

namespace {

uint64 TidKeyOf(const ItemPointerData *t) {
	return ((uint64)ItemPointerGetBlockNumberNoCheck(t) << 16) | ItemPointerGetOffsetNumberNoCheck(t);
}

} // namespace

bool SegmentMetricFor(s5v::Metric m, s5::SegmentMetric *out) {
	switch (m) {
	case s5v::Metric::L2:
		*out = s5::SegmentMetric::L2;
		return true;
	case s5v::Metric::InnerProduct:
		*out = s5::SegmentMetric::InnerProduct;
		return true;
	case s5v::Metric::Cosine:
		*out = s5::SegmentMetric::Cosine;
		return true;
	default:
		return false;
	}
}

void OffloadLockTag(Relation index, LOCKTAG *tag) {
	SET_LOCKTAG_TUPLE(*tag, index->rd_lockInfo.lockRelId.dbId, index->rd_lockInfo.lockRelId.relId, 0, 2);
}

void ReadEntry(Relation index, uint32 dim, const ColdTierInfo &tier, uint32 list, EntryRef *out) {
	out->cblk = tier.centroid_head + list / tier.lists_per_page;
	out->slot = list % tier.lists_per_page;
	Buffer buf = ReadBuffer(index, out->cblk);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	S5vCentroids c =
	    (S5vCentroids)GetColdItem(index, BufferGetPage(buf), out->cblk, S5V_PAGE_CENTROIDS, S5V_TUPLE_CENTROIDS);
	if (c->first_list != list - out->slot || out->slot >= c->count) {
		UnlockReleaseBuffer(buf);
		ReportCorruptCold(index, out->cblk, "centroid page does not hold the list it should");
	}
	out->e = *CentroidEntry(c, out->slot, dim);
	UnlockReleaseBuffer(buf);
}

namespace {

bool IsFreePage(Page page) {
	return PageIsNew(page) || IsFreeColdPage(page);
}

// Is the page a part page of `list`? Not when a part chain reaches a page that a compaction freed and something
// else took since (a hot insert, another list's part, a queue page) or that is free: the head its reader read is
// older than a swap. Only the page's kind and list are looked at; GetColdPart checks the rest.
bool IsPartPageOf(Page page, uint32 list) {
	if (PageIsNew(page) || PageGetSpecialSize(page) != MAXALIGN(sizeof(S5vPageOpaqueData)) ||
	    S5vPageGetOpaque(page)->page_id != S5V_PAGE_ID || S5vPageGetOpaque(page)->page_type != S5V_PAGE_COLD_PART ||
	    PageGetMaxOffsetNumber(page) != FirstOffsetNumber)
		return false;
	ItemId iid = PageGetItemId(page, FirstOffsetNumber);
	if (!ItemIdIsNormal(iid) || ItemIdGetLength(iid) < sizeof(S5vColdPartData))
		return false;
	S5vColdPart p = (S5vColdPart)PageGetItem(page, iid);
	return p->type == S5V_TUPLE_COLD_PART && p->list == list;
}

// A page for a new part or queue page, locked exclusively: a page offload freed (FSM), else a new one.
Buffer AllocPage(Relation index) {
	for (;;) {
		BlockNumber blk = GetFreeIndexPage(index);
		if (blk == InvalidBlockNumber)
			break;
		if (blk <= S5V_METAPAGE_BLKNO || blk >= RelationGetNumberOfBlocks(index))
			continue;
		Buffer buf = ReadBuffer(index, blk);
		if (ConditionalLockBuffer(buf)) {
			if (IsFreePage(BufferGetPage(buf)))
				return buf;
			LockBuffer(buf, BUFFER_LOCK_UNLOCK);
		}
		ReleaseBuffer(buf);
	}
	LockRelationForExtension(index, ExclusiveLock);
	Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, P_NEW, RBM_NORMAL, NULL);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	UnlockRelationForExtension(index, ExclusiveLock);
	return buf;
}

} // namespace

S5vGcQueue GetGcQueue(Relation index, Page page, BlockNumber blk) {
	S5vGcQueue q = (S5vGcQueue)GetColdItem(index, page, blk, S5V_PAGE_COLD_PART, S5V_TUPLE_GC_QUEUE);
	if (q->capacity != GcEntriesPerPage() || q->count > q->capacity)
		ReportCorruptCold(index, blk, "collection queue page with an impossible count");
	return q;
}

BlockNumber GcQueuePageWithRoom(Relation index, uint32 room) {
	room = Max(room, 1u);
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	BlockNumber head = meta.worker.gc_queue_head;
	if (head != InvalidBlockNumber) {
		Buffer buf = ReadBuffer(index, head);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		S5vGcQueue q = GetGcQueue(index, BufferGetPage(buf), head);
		bool fits = (uint32)q->count + room <= q->capacity;
		UnlockReleaseBuffer(buf);
		if (fits)
			return head;
	}
	// A new, empty queue page becomes the head (one record with the index metapage).
	Buffer nbuf = AllocPage(index);
	BlockNumber nblk = BufferGetBlockNumber(nbuf);
	Buffer metabuf = ReadBuffer(index, S5V_METAPAGE_BLKNO);
	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
	GenericXLogState *state = GenericXLogStart(index);
	Page mpage = GenericXLogRegisterBuffer(state, metabuf, 0);
	Page page = GenericXLogRegisterBuffer(state, nbuf, GENERIC_XLOG_FULL_IMAGE);
	S5vGcQueue q = (S5vGcQueue)InitColdPage(page, S5V_PAGE_COLD_PART, S5V_TUPLE_GC_QUEUE);
	q->capacity = (uint16)GcEntriesPerPage();
	S5vPageGetOpaque(page)->nextblkno = S5vPageGetMeta(mpage)->worker.gc_queue_head;
	S5vPageGetMeta(mpage)->worker.gc_queue_head = nblk;
	GenericXLogFinish(state);
	UnlockReleaseBuffer(metabuf);
	UnlockReleaseBuffer(nbuf);
	return nblk;
}

BlockNumber QueueBlob(Relation index, const s5::BlobId &blob, uint32 kind, uint32 room) {
	BlockNumber blk = GcQueuePageWithRoom(index, room);
	Buffer buf = ReadBuffer(index, blk);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	S5vGcQueue q = GetGcQueue(index, BufferGetPage(buf), blk);
	if (q->count >= q->capacity) {
		UnlockReleaseBuffer(buf);
		ReportCorruptCold(index, blk, "collection queue page full after room was made");
	}
	GenericXLogState *state = GenericXLogStart(index);
	Page page = GenericXLogRegisterBuffer(state, buf, 0);
	q = (S5vGcQueue)PageGetItem(page, PageGetItemId(page, FirstOffsetNumber));
	S5vGcEntryData *e = &q->entries[q->count++];
	memset(e, 0, sizeof(*e));
	memcpy(e->hash, blob.hash.data(), 32);
	e->size = blob.size;
	e->queued = GetCurrentTimestamp();
	e->kind = kind;
	XLogRecPtr lsn = GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
	// Durable before the upload starts: a crash after the upload must find the intent (no silent orphan).
	XLogFlush(lsn);
	return blk;
}

int FindGcEntry(S5vGcQueue q, const s5::BlobId &blob, uint32 kind) {
	for (int i = 0; i < q->count; i++)
		if (q->entries[i].kind == kind && q->entries[i].size == blob.size &&
		    memcmp(q->entries[i].hash, blob.hash.data(), 32) == 0)
			return i;
	return -1;
}

void AbandonPending(Relation index, BlockNumber qblk, const s5::BlobId &blob) {
	Buffer buf = ReadBuffer(index, qblk);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	S5vGcQueue q = GetGcQueue(index, BufferGetPage(buf), qblk);
	if (FindGcEntry(q, blob, S5V_GC_PENDING) >= 0) {
		GenericXLogState *state = GenericXLogStart(index);
		Page page = GenericXLogRegisterBuffer(state, buf, 0);
		q = (S5vGcQueue)PageGetItem(page, PageGetItemId(page, FirstOffsetNumber));
		int i = FindGcEntry(q, blob, S5V_GC_PENDING);
		q->entries[i].kind = S5V_GC_UNREFERENCED;
		q->entries[i].queued = GetCurrentTimestamp();
		GenericXLogFinish(state);
	}
	UnlockReleaseBuffer(buf);
}

namespace {

// A sealed prefix of one list, copied (palloc'd).
struct SealCandidate {
	uint32 list;
	uint32 segment_no;
	BlockNumber old_parts_head;
	BlockNumber next_head; // the chain's head after the swap
	int npages;
	BlockNumber *blocks;
	uint16 *counts;
	uint32 rows;
	ItemPointerData *tids;
	int64 *ages;
	uint8 *flags;
	float *vecs;
};

// Step 1 (caller holds the cold write lock): the sealable prefix of `list`, if it has one.
bool FindSealable(Relation index, uint32 dim, const ColdTierInfo &tier, uint32 list, SealCandidate *c) {
	EntryRef ref;
	ReadEntry(index, dim, tier, list, &ref);
	const uint32 cap = RowsPerPart();
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	c->list = list;
	c->old_parts_head = ref.e.parts_head;
	c->npages = 0;
	c->rows = 0;
	uint32 maxpages = cap; // at least one row a page
	c->blocks = (BlockNumber *)palloc(sizeof(BlockNumber) * maxpages);
	c->counts = (uint16 *)palloc(sizeof(uint16) * maxpages);
	c->tids = (ItemPointerData *)palloc(sizeof(ItemPointerData) * cap);
	c->ages = (int64 *)palloc(sizeof(int64) * cap);
	c->flags = (uint8 *)palloc(cap);
	c->vecs = (float *)palloc_extended(sizeof(float) * dim * cap, MCXT_ALLOC_HUGE);
	BlockNumber blk = ref.e.tail_head;
	PartAgeCodec codec;
	while (blk != InvalidBlockNumber && blk != ref.e.tail_tail) {
		if (blk <= S5V_METAPAGE_BLKNO || blk >= nblocks || (uint32)c->npages >= maxpages)
			ReportCorruptCold(index, blk, "list chain leaves the index or loops");
		Buffer buf = ReadBuffer(index, blk);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		S5vRowsLayout l;
		S5vColdRows rows = GetColdRows(index, BufferGetPage(buf), blk, dim, &l);
		if (rows->list != list) {
			UnlockReleaseBuffer(buf);
			ReportCorruptCold(index, blk, "row page of another list");
		}
		// The part's rows must fit one part page with their ages' encoding (4-byte offsets when they allow).
		PartAgeCodec with = codec;
		for (uint16 r = 0; r < rows->count; r++)
			with.Add(RowsAges(rows, l)[r]);
		if (c->rows + rows->count > with.Capacity()) {
			UnlockReleaseBuffer(buf);
			break;
		}
		codec = with;
		memcpy(c->tids + c->rows, RowsTids(rows, l), sizeof(ItemPointerData) * rows->count);
		memcpy(c->ages + c->rows, RowsAges(rows, l), sizeof(int64) * rows->count);
		memcpy(c->flags + c->rows, RowsFlags(rows, l), rows->count);
		memcpy(c->vecs + (Size)c->rows * dim, RowsVectors(rows, l), sizeof(float) * dim * rows->count);
		c->rows += rows->count;
		c->blocks[c->npages] = blk;
		c->counts[c->npages] = rows->count;
		c->npages++;
		BlockNumber next = S5vPageGetOpaque(BufferGetPage(buf))->nextblkno;
		UnlockReleaseBuffer(buf);
		blk = next;
	}
	c->next_head = blk;
	if (c->npages == 0 || c->rows < cap / 8 || c->next_head == InvalidBlockNumber)
		return false;
	c->segment_no = 0;
	if (ref.e.parts_head != InvalidBlockNumber) {
		Buffer buf = ReadBuffer(index, ref.e.parts_head);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		S5vPartLayout pl;
		S5vColdPart p = GetColdPart(index, BufferGetPage(buf), ref.e.parts_head, &pl);
		c->segment_no = p->segment_no + 1;
		UnlockReleaseBuffer(buf);
	}
	return true;
}

// Step 5 (caller holds the cold write lock). False when the list changed since step 1 (the blob is then queued as
// unreferenced).
bool SwapInPart(Relation index, uint32 dim, const ColdTierInfo &tier, SealCandidate *c, const uint8 *cid,
                uint16 cid_len, const s5::BlobId &blob, BlockNumber qblk) {
	EntryRef ref;
	ReadEntry(index, dim, tier, c->list, &ref);
	bool same = ref.e.tail_head == c->blocks[0] && ref.e.parts_head == c->old_parts_head;
	// The sealed pages: same rows, same links; their flags now (VACUUM may have marked rows dead meanwhile).
	uint32 at = 0;
	for (int i = 0; same && i < c->npages; i++) {
		Buffer buf = ReadBuffer(index, c->blocks[i]);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		S5vRowsLayout l;
		S5vColdRows rows = GetColdRows(index, BufferGetPage(buf), c->blocks[i], dim, &l);
		BlockNumber next = S5vPageGetOpaque(BufferGetPage(buf))->nextblkno;
		BlockNumber want = i + 1 < c->npages ? c->blocks[i + 1] : c->next_head;
		same = rows->list == c->list && rows->count == c->counts[i] && next == want &&
		       memcmp(RowsTids(rows, l), c->tids + at, sizeof(ItemPointerData) * rows->count) == 0;
		if (same)
			memcpy(c->flags + at, RowsFlags(rows, l), rows->count);
		at += rows->count;
		UnlockReleaseBuffer(buf);
	}
	if (!same) {
		AbandonPending(index, qblk, blob);
		return false;
	}
	Buffer pbuf = AllocPage(index);
	BlockNumber pblk = BufferGetBlockNumber(pbuf);
	Buffer metabuf = ReadBuffer(index, tier.meta_blkno);
	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
	(void)GetColdMeta(index, BufferGetPage(metabuf), tier.meta_blkno, dim, RelationGetNumberOfBlocks(index));
	Buffer cbuf = ReadBuffer(index, ref.cblk);
	LockBuffer(cbuf, BUFFER_LOCK_EXCLUSIVE);
	Buffer qbuf = ReadBuffer(index, qblk);
	LockBuffer(qbuf, BUFFER_LOCK_EXCLUSIVE);
	S5vGcQueue q0 = GetGcQueue(index, BufferGetPage(qbuf), qblk);
	(void)q0;

	GenericXLogState *state = GenericXLogStart(index);
	Page mpage = GenericXLogRegisterBuffer(state, metabuf, 0);
	Page cpage = GenericXLogRegisterBuffer(state, cbuf, 0);
	Page ppage = GenericXLogRegisterBuffer(state, pbuf, GENERIC_XLOG_FULL_IMAGE);
	Page qpage = GenericXLogRegisterBuffer(state, qbuf, 0);
	S5vColdMeta cm = (S5vColdMeta)PageGetItem(mpage, PageGetItemId(mpage, FirstOffsetNumber));
	S5vListInfo e =
	    CentroidEntry((S5vCentroids)PageGetItem(cpage, PageGetItemId(cpage, FirstOffsetNumber)), ref.slot, dim);
	S5vGcQueue q = (S5vGcQueue)PageGetItem(qpage, PageGetItemId(qpage, FirstOffsetNumber));
	// FindSealable checked the ages' encoding; the part goes first in the list's chain.
	WritePartPage(
	    ppage,
	    NewPart{c->list, c->segment_no, cid, cid_len, blob, c->tids, c->ages, c->flags, c->rows, c->old_parts_head}, q,
	    "a sealed part");
	e->tail_head = c->next_head;
	e->tail_pages = e->tail_pages >= (uint32)c->npages ? e->tail_pages - c->npages : 0;
	e->parts_head = pblk;
	cm->remote_rows += c->rows;
	cm->remote_segments++;
	cm->remote_bytes += (int64)blob.size;
	GenericXLogFinish(state);
	UnlockReleaseBuffer(qbuf);
	UnlockReleaseBuffer(cbuf);
	UnlockReleaseBuffer(metabuf);
	UnlockReleaseBuffer(pbuf);
	return true;
}

// Step 6: the sealed row pages become free pages (WAL) and go to the FSM.
void FreeRowPages(Relation index, uint32 dim, const SealCandidate *c) {
	for (int i = 0; i < c->npages; i++)
		FreeColdPage(index, c->blocks[i], S5V_PAGE_COLD_ROWS, -1);
}

} // namespace

void WritePartPage(Page page, const NewPart &part, S5vGcQueue queue, const char *what) {
	S5vColdPart p = (S5vColdPart)InitColdPage(page, S5V_PAGE_COLD_PART, S5V_TUPLE_COLD_PART);
	if (part.cid_len == 0 || part.cid_len > S5V_PART_CID_MAX)
		elog(ERROR, "s5vector: %s has an encrypted CID of %u bytes", what, part.cid_len);
	p->cid_len = part.cid_len;
	p->list = part.list;
	p->segment_no = part.segment_no;
	p->remote_bytes = (int64)part.blob.size;
	memcpy(p->cid, part.cid, part.cid_len);
	if (!PartWriteRows(p, part.tids, part.ages, part.flags, part.rows))
		elog(ERROR, "s5vector: %s does not fit its page", what);
	S5vPageGetOpaque(page)->nextblkno = part.next;
	if (queue != nullptr) {
		int qi = FindGcEntry(queue, part.blob, S5V_GC_PENDING);
		if (qi >= 0) {
			queue->entries[qi] = queue->entries[queue->count - 1];
			queue->count--;
		}
	}
}

void FreeColdPage(Relation index, BlockNumber blk, uint16 page_type, int tuple_type) {
	Buffer buf = ReadBuffer(index, blk);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	Page page = BufferGetPage(buf);
	bool ok = !PageIsNew(page) && S5vPageGetOpaque(page)->page_type == page_type;
	if (ok && tuple_type >= 0)
		ok = PageGetMaxOffsetNumber(page) == FirstOffsetNumber &&
		     (uint8)((char *)PageGetItem(page, PageGetItemId(page, FirstOffsetNumber)))[0] == (uint8)tuple_type;
	if (ok) {
		GenericXLogState *state = GenericXLogStart(index);
		Page w = GenericXLogRegisterBuffer(state, buf, GENERIC_XLOG_FULL_IMAGE);
		(void)InitColdPage(w, S5V_PAGE_COLD_PART, S5V_TUPLE_FREE);
		GenericXLogFinish(state);
	}
	UnlockReleaseBuffer(buf);
	if (ok)
		RecordFreeIndexPage(index, blk);
}

void EncodeAndUploadSegment(Relation index, const IndexInfoCache &info, const S5vMetaPageData &meta, uint32 list,
                            uint32 segment_no, uint32 rows, const ItemPointerData *tids, const float *vecs,
                            uint32 queue_room, uint8 *cid_out, uint16 *cid_len, s5::BlobId *blob, BlockNumber *qblk) {
	s5::SegmentMetric metric;
	if (!SegmentMetricFor(info.metric, &metric))
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("cannot offload index \"%s\": its metric has no segment format",
		                       RelationGetRelationName(index))));
	uint64 *ids = (uint64 *)palloc(sizeof(uint64) * rows);
	for (uint32 i = 0; i < rows; i++)
		ids[i] = TidKeyOf(&tids[i]);
	Guarded([&]() -> Status {
		InterruptToken cancel;
		s5::SegmentHeader h;
		h.dims = info.dimensions;
		h.metric = metric;
		memcpy(h.index_id.data(), meta.index_id, 16);
		h.list_no = list;
		h.segment_no = segment_no;
		h.row_count = rows;
		std::vector<uint8_t> plain, cipher;
		S5V_RETURN_IF_ERROR(s5::EncodeSegment(h, std::span<const float>(vecs, (size_t)rows * info.dimensions),
		                                      std::span<const uint64_t>(ids, rows), {}, &plain));
		s5::EncryptedCid ecid;
		S5V_RETURN_IF_ERROR(s5::EncryptBlob(plain, &cipher, &ecid));
		std::vector<uint8_t> bytes = s5::EncodeEncryptedCidBytes(ecid);
		if (bytes.size() > S5V_PART_CID_MAX)
			return Status::Internal("encrypted CID longer than a part page holds");
		memcpy(cid_out, bytes.data(), bytes.size());
		*cid_len = (uint16)bytes.size();
		*blob = ecid.encrypted;
		s5::S5Client *client = nullptr;
		S5V_RETURN_IF_ERROR(S5ClientForSettings(&client));
		// 3. The intent, durable before the upload (inside CREATE INDEX, qblk NULL: the build journal instead).
		if (qblk != nullptr) {
			Status st;
			s5::BlobId b = ecid.encrypted;
			S5V_PG_CALL(st, LockColdWrite(index); *qblk = QueueBlob(index, b, S5V_GC_PENDING, queue_room);
			            UnlockColdWrite(index));
			S5V_RETURN_IF_ERROR(st);
		} else {
			// Inside CREATE INDEX: the build journal records it, durable before the upload (build_journal.h).
			Status st;
			S5V_PG_CALL(st, BuildJournalRecord(index, ecid.encrypted.hash.data(), ecid.encrypted.size));
			S5V_RETURN_IF_ERROR(st);
		}
		// 4. Upload; Upload checks the node's CID against ours (Corrupt otherwise).
		s5::BlobId uploaded;
		Status up = client->Upload(cipher, &uploaded, cancel);
		if (!up.ok())
			return Status(up.code(), "could not upload a segment of index \"" +
			                             std::string(RelationGetRelationName(index)) + "\": " + up.message());
		if (!(uploaded == ecid.encrypted))
			return Status::Corrupt("the S5 node answered another CID than the segment's");
		return Status::Ok();
	});
	pfree(ids);
}

namespace {

// Steps 2-4 for one candidate: encode, encrypt, intent, upload (EncodeAndUploadSegment).
void EncodeAndUpload(Relation index, const IndexInfoCache &info, const S5vMetaPageData &meta, SealCandidate *c,
                     uint8 *cid_out, uint16 *cid_len, s5::BlobId *blob, BlockNumber *qblk) {
	EncodeAndUploadSegment(index, info, meta, c->list, c->segment_no, c->rows, c->tids, c->vecs, 1, cid_out, cid_len,
	                       blob, qblk);
}

// When a step last ran (last_offload, last_gc): one Generic WAL record of the metapage.
void StampWorkerTime(Relation index, TimestampTz S5vWorkerStateData::*field) {
	Buffer metabuf = ReadBuffer(index, S5V_METAPAGE_BLKNO);
	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
	GenericXLogState *state = GenericXLogStart(index);
	Page mpage = GenericXLogRegisterBuffer(state, metabuf, 0);
	S5vPageGetMeta(mpage)->worker.*field = GetCurrentTimestamp();
	GenericXLogFinish(state);
	UnlockReleaseBuffer(metabuf);
}

} // namespace

// ---- what an index references or queues (the blob ledger reads these before the pages go) ---------------------

void LockOffloadWait(Relation index) {
	LOCKTAG tag;
	OffloadLockTag(index, &tag);
	(void)LockAcquire(&tag, ExclusiveLock, false, false);
}

int ReadListPartBlobs(Relation index, uint32 dim, const ColdTierInfo &tier, uint32 list, RemoteBlob **out) {
	*out = nullptr;
	EntryRef ref;
	ReadEntry(index, dim, tier, list, &ref);
	if (ref.e.parts_head == InvalidBlockNumber)
		return 0;
	PartInfo *parts;
	int n = ReadPartChain(index, ref.e.parts_head, list, &parts);
	RemoteBlob *blobs = (RemoteBlob *)palloc0(sizeof(RemoteBlob) * Max(n, 1));
	int bad = -1;
	Guarded([&]() -> Status {
		for (int i = 0; i < n && bad < 0; i++) {
			s5::EncryptedCid ecid;
			Status ps = s5::ParseEncryptedCidBytes(std::span<const uint8_t>(parts[i].cid, parts[i].cid_len), &ecid);
			if (!ps.ok() || (int64)ecid.encrypted.size != parts[i].remote_bytes) {
				bad = i;
				break;
			}
			memcpy(blobs[i].hash, ecid.encrypted.hash.data(), 32);
			blobs[i].size = ecid.encrypted.size;
			blobs[i].queued = 0;
			blobs[i].kind = 0;
		}
		return Status::Ok();
	});
	if (bad >= 0)
		ReportCorruptCold(index, parts[bad].blkno, "part page holds an invalid encrypted CID");
	for (int i = 0; i < n; i++) {
		pfree(parts[i].tids);
		pfree(parts[i].ages);
		pfree(parts[i].flags);
	}
	pfree(parts);
	*out = blobs;
	return n;
}

int ReadGcQueuePage(Relation index, BlockNumber blk, RemoteBlob *out, BlockNumber *next) {
	Buffer buf = ReadBuffer(index, blk);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	S5vGcQueue q = GetGcQueue(index, BufferGetPage(buf), blk);
	int n = q->count;
	for (int i = 0; i < n; i++) {
		memcpy(out[i].hash, q->entries[i].hash, 32);
		out[i].size = q->entries[i].size;
		out[i].queued = q->entries[i].queued;
		out[i].kind = q->entries[i].kind;
	}
	*next = S5vPageGetOpaque(BufferGetPage(buf))->nextblkno;
	UnlockReleaseBuffer(buf);
	return n;
}

bool DeleteRemoteBlob(const char *what, const uint8 *hash, uint64 size) {
	s5::BlobId blob;
	memcpy(blob.hash.data(), hash, 32);
	blob.size = size;
	bool gone = false;
	Guarded([&]() -> Status {
		InterruptToken cancel;
		s5::S5Client *client = nullptr;
		S5V_RETURN_IF_ERROR(S5ClientForSettings(&client));
		Status st = client->Delete(blob, cancel);
		if (!st.ok() && st.code() != StatusCode::NotFound)
			return Status(st.code(), "could not delete " + std::string(what) + ": " + st.message());
		gone = st.ok();
		return Status::Ok();
	});
	return gone;
}

// ---- part pages ---------------------------------------------------------------------------------------------------

S5vColdPart GetColdPart(Relation index, Page page, BlockNumber blkno, S5vPartLayout *layout) {
	S5vColdPart p = (S5vColdPart)GetColdItem(index, page, blkno, S5V_PAGE_COLD_PART, S5V_TUPLE_COLD_PART);
	if ((p->age_width != 4 && p->age_width != 8) || p->capacity != RowsPerPartFor(p->age_width) || p->count == 0 ||
	    p->count > p->capacity || p->cid_len == 0 || p->cid_len > S5V_PART_CID_MAX || p->remote_bytes <= 0 ||
	    p->age_scale == 0 || (p->age_width == 8 && (p->age_base != 0 || p->age_scale != 1)))
		ReportCorruptCold(index, blkno, "part page with an impossible count, capacity, age encoding or CID");
	*layout = PartLayoutFor(p->capacity, p->age_width);
	// Bits past count must be clear (a flag of a row that does not exist).
	const uint8 *dead = (const uint8 *)p + layout->dead;
	const uint8 *nulls = (const uint8 *)p + layout->nulls;
	for (uint32 r = p->count; r < p->capacity; r++)
		if (((dead[r / 8] | nulls[r / 8]) >> (r % 8)) & 1)
			ReportCorruptCold(index, blkno, "row flags past the part's rows");
	return p;
}

int ReadPartChain(Relation index, BlockNumber head, uint32 list, PartInfo **out) {
	int n = 0, cap = 4;
	PartInfo *parts = (PartInfo *)palloc(sizeof(PartInfo) * cap);
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	BlockNumber walked = 0;
	int restarts = 0;
	for (BlockNumber blk = head; blk != InvalidBlockNumber;) {
		CHECK_FOR_INTERRUPTS();
		CheckChainStep(index, blk, nblocks, &walked, "part chain leaves the index or loops");
		Buffer buf = ReadBuffer(index, blk);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		Page page = BufferGetPage(buf);
		if (restarts < 16 && !IsPartPageOf(page, list)) {
			// A page a compaction freed (and perhaps another list or a hot insert took since): the chain (or the
			// head the caller read) is older than a swap that a hot standby replayed (its scans are not waited for)
			// or that a reader without the scan interlock missed. Walk again from the list's entry as it is now.
			UnlockReleaseBuffer(buf);
			restarts++;
			uint32 dim = GetIndexInfo(index).dimensions;
			S5vMetaPageData meta;
			ReadMetaPage(index, &meta);
			ColdTierInfo tier;
			ReadColdTier(index, meta, dim, &tier);
			if (tier.meta_blkno == InvalidBlockNumber || list >= tier.lists)
				ReportCorruptCold(index, blk, "part chain reaches a free page");
			EntryRef ref;
			ReadEntry(index, dim, tier, list, &ref);
			blk = ref.e.parts_head;
			n = 0;
			walked = 0;
			nblocks = RelationGetNumberOfBlocks(index);
			continue;
		}
		S5vPartLayout l;
		S5vColdPart p = GetColdPart(index, page, blk, &l);
		if (p->list != list) {
			UnlockReleaseBuffer(buf);
			ReportCorruptCold(index, blk, "part page of another list");
		}
		if (n == cap) {
			cap *= 2;
			parts = (PartInfo *)repalloc(parts, sizeof(PartInfo) * cap);
		}
		PartInfo *pi = &parts[n++];
		pi->blkno = blk;
		pi->list = p->list;
		pi->segment_no = p->segment_no;
		pi->rows = p->count;
		pi->remote_bytes = p->remote_bytes;
		pi->cid_len = p->cid_len;
		memcpy(pi->cid, p->cid, p->cid_len);
		pi->tids = (ItemPointerData *)palloc(sizeof(ItemPointerData) * p->count);
		pi->ages = (int64 *)palloc(sizeof(int64) * p->count);
		pi->flags = (uint8 *)palloc(p->count);
		memcpy(pi->tids, PartTids(p, l), sizeof(ItemPointerData) * p->count);
		for (uint32 r = 0; r < p->count; r++) {
			pi->ages[r] = PartAge(p, l, r);
			pi->flags[r] = PartRowFlags(p, l, r);
		}
		BlockNumber next = S5vPageGetOpaque(page)->nextblkno;
		UnlockReleaseBuffer(buf);
		blk = next;
	}
	*out = parts;
	return n;
}

void FetchPartVectors(Relation index, const IndexInfoCache &info, const PartInfo *parts, int n, float **vecs,
                      bool *warned, bool thorough) {
	if (n <= 0)
		return;
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	uint32 dim = info.dimensions;
	uint64 **ids = (uint64 **)palloc(sizeof(uint64 *) * n);
	int *codes = (int *)palloc0(sizeof(int) * n);
	typedef char Message[512];
	Message *msgs = (Message *)palloc0(sizeof(Message) * n);
	for (int i = 0; i < n; i++) {
		vecs[i] = (float *)palloc_extended(sizeof(float) * dim * parts[i].rows, MCXT_ALLOC_HUGE);
		ids[i] = (uint64 *)palloc(sizeof(uint64) * parts[i].rows);
		for (uint32 r = 0; r < parts[i].rows; r++)
			ids[i][r] = TidKeyOf(&parts[i].tids[r]);
	}
	bool use_cache = s5v_cache_size_kb > 0;
	Guarded([&]() -> Status {
		InterruptToken cancel;
		SegmentIdentity identity;
		memcpy(identity.index_id.data(), meta.index_id, 16);
		identity.dims = dim;
		if (!SegmentMetricFor(info.metric, &identity.metric))
			return Status::Internal("remote parts in an index whose metric has no segment format");
		std::vector<RemotePartRef> refs(n);
		std::vector<int> bad(n, 0);
		for (int i = 0; i < n; i++) {
			Status ps =
			    s5::ParseEncryptedCidBytes(std::span<const uint8_t>(parts[i].cid, parts[i].cid_len), &refs[i].cid);
			if (!ps.ok() || (int64)refs[i].cid.encrypted.size != parts[i].remote_bytes) {
				codes[i] = ERRCODE_INDEX_CORRUPTED;
				snprintf(msgs[i], sizeof(Message), "part page %u holds an invalid encrypted CID", parts[i].blkno);
				bad[i] = 1;
			}
			refs[i].list = parts[i].list;
			refs[i].segment_no = parts[i].segment_no;
			refs[i].rows = parts[i].rows;
			refs[i].row_ids = ids[i];
			refs[i].dest = vecs[i];
		}
		std::vector<RemotePartRef> todo;
		std::vector<int> where;
		for (int i = 0; i < n; i++)
			if (!bad[i]) {
				todo.push_back(refs[i]);
				where.push_back(i);
			}
		std::vector<FetchedPart> got;
		Status st = FetchRemoteParts(identity, todo, use_cache, thorough, &got, cancel);
		if (st.code() == StatusCode::Cancelled || st.code() == StatusCode::OutOfMemory ||
		    st.code() == StatusCode::Internal)
			return st;
		for (size_t k = 0; k < todo.size(); k++) {
			int i = where[k];
			if (k < got.size() && got[k].status.ok())
				continue;
			Status fs = k < got.size() ? got[k].status : st;
			codes[i] = SqlStateFor(fs.code());
			snprintf(msgs[i], sizeof(Message), "%s", fs.message().c_str());
		}
		return Status::Ok();
	});
	int failed = 0, first = -1;
	for (int i = 0; i < n; i++)
		if (codes[i] != 0) {
			failed++;
			if (first < 0)
				first = i;
			pfree(vecs[i]);
			vecs[i] = nullptr;
		}
	if (failed > 0) {
		if (s5v_on_s5_error != S5V_ON_S5_ERROR_WARNING)
			ereport(ERROR, (errcode(codes[first]),
			                errmsg("could not read %d of %d remote segments of index \"%s\"", failed, n,
			                       RelationGetRelationName(index)),
			                errdetail("%s", msgs[first])));
		if (!*warned)
			ereport(WARNING, (errcode(codes[first]),
			                  errmsg("index \"%s\": %d of %d remote segments could not be read; their rows are "
			                         "left out",
			                         RelationGetRelationName(index), failed, n),
			                  errdetail("%s", msgs[first]),
			                  errhint("s5vector.on_s5_error = warning returns the rows that could be reached.")));
		*warned = true;
	}
	for (int i = 0; i < n; i++)
		pfree(ids[i]);
	pfree(ids);
	pfree(codes);
	pfree(msgs);
}

// ---- offload --------------------------------------------------------------------------------------------------------

int64 OffloadIndex(Relation index, int64 max_segments) {
	if (!S5Configured() || !OptionOffload(index) || max_segments <= 0)
		return 0;
	if (RecoveryInProgress())
		ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION), errmsg("cannot offload during recovery"),
		                errhint("A standby fetches segments; only the primary offloads.")));
	const IndexInfoCache &info = GetIndexInfo(index);
	uint32 dim = info.dimensions;
	s5::SegmentMetric metric;
	if (!SegmentMetricFor(info.metric, &metric))
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("cannot offload index \"%s\": the l1 metric has no segment format",
		                       RelationGetRelationName(index))));
	LOCKTAG tag;
	OffloadLockTag(index, &tag);
	if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL) {
		ereport(WARNING, (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
		                  errmsg("index \"%s\" is being offloaded by another session; skipped",
		                         RelationGetRelationName(index))));
		return 0;
	}
	// An index that is not valid (DROP INDEX CONCURRENTLY under way, a failed CREATE INDEX CONCURRENTLY) gets no new
	// blob: the blob ledger copied what it referenced when the drop began (docs/s5.md "Dropped indexes").
	if (!get_index_isvalid(RelationGetRelid(index))) {
		LockRelease(&tag, ExclusiveLock, false);
		return 0;
	}
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	ColdTierInfo tier;
	ReadColdTier(index, meta, dim, &tier);
	int64 rows_done = 0, segments = 0;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "s5vector offload", ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	for (uint32 list = 0; list < tier.lists && segments < max_segments; list++) {
		for (;;) {
			if (segments >= max_segments)
				break;
			CHECK_FOR_INTERRUPTS();
			MemoryContextReset(cxt);
			SealCandidate c;
			LockColdWrite(index);
			bool found = FindSealable(index, dim, tier, list, &c);
			UnlockColdWrite(index);
			if (!found)
				break;
			uint8 cid[S5V_PART_CID_MAX];
			uint16 cid_len = 0;
			s5::BlobId blob;
			BlockNumber qblk = InvalidBlockNumber;
			EncodeAndUpload(index, info, meta, &c, cid, &cid_len, &blob, &qblk);
			LockColdWrite(index);
			bool swapped = SwapInPart(index, dim, tier, &c, cid, cid_len, blob, qblk);
			UnlockColdWrite(index);
			if (!swapped)
				break; // the list changed under us (another writer): leave it to a later round
			WaitForScans(index);
			FreeRowPages(index, dim, &c);
			rows_done += c.rows;
			segments++;
		}
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	if (segments > 0) {
		IndexFreeSpaceMapVacuum(index);
		StampWorkerTime(index, &S5vWorkerStateData::last_offload);
	}
	LockRelease(&tag, ExclusiveLock, false);
	return rows_done;
}

// ---- collection
// ------------------------------------------------------------------------------------------------------

int64 CollectGarbage(Relation index) {
	if (!S5Configured() || s5v_gc_grace_s < 0)
		return 0;
	if (RecoveryInProgress())
		ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION), errmsg("cannot collect blobs during recovery"),
		                errhint("A standby never deletes blobs; run s5vector_gc on the primary.")));
	// No offload may be between its intent and its swap: its pending entry names a blob it is about to reference.
	LOCKTAG tag;
	OffloadLockTag(index, &tag);
	if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL) {
		ereport(WARNING, (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
		                  errmsg("index \"%s\" is being offloaded or collected by another session; skipped",
		                         RelationGetRelationName(index))));
		return 0;
	}
	TimestampTz cutoff = GetCurrentTimestamp() - (TimestampTz)s5v_gc_grace_s * USECS_PER_SEC;
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	// The queued entries old enough (copied: queue pages are only changed under the cold write lock).
	int n = 0, cap = 16;
	S5vGcEntryData *entries = (S5vGcEntryData *)palloc(sizeof(S5vGcEntryData) * cap);
	BlockNumber *pages = (BlockNumber *)palloc(sizeof(BlockNumber) * cap);
	BlockNumber walked = 0;
	for (BlockNumber blk = meta.worker.gc_queue_head; blk != InvalidBlockNumber;) {
		CheckChainStep(index, blk, nblocks, &walked, "collection queue leaves the index or loops");
		Buffer buf = ReadBuffer(index, blk);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		S5vGcQueue q = GetGcQueue(index, BufferGetPage(buf), blk);
		for (int i = 0; i < q->count; i++)
			if (q->entries[i].queued <= cutoff) {
				if (n == cap) {
					cap *= 2;
					entries = (S5vGcEntryData *)repalloc(entries, sizeof(S5vGcEntryData) * cap);
					pages = (BlockNumber *)repalloc(pages, sizeof(BlockNumber) * cap);
				}
				entries[n] = q->entries[i];
				pages[n++] = blk;
			}
		BlockNumber next = S5vPageGetOpaque(BufferGetPage(buf))->nextblkno;
		UnlockReleaseBuffer(buf);
		blk = next;
	}
	int64 deleted = 0;
	for (int i = 0; i < n; i++) {
		CHECK_FOR_INTERRUPTS();
		s5::BlobId blob;
		memcpy(blob.hash.data(), entries[i].hash, 32);
		blob.size = entries[i].size;
		// Delete (unpin) first, then drop the entry: a crash in between deletes again next time (NotFound is fine).
		bool gone = DeleteRemoteBlob(psprintf("a queued blob of index \"%s\"", RelationGetRelationName(index)),
		                             entries[i].hash, entries[i].size);
		LockColdWrite(index);
		Buffer buf = ReadBuffer(index, pages[i]);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		S5vGcQueue q = GetGcQueue(index, BufferGetPage(buf), pages[i]);
		if (FindGcEntry(q, blob, entries[i].kind) >= 0) {
			GenericXLogState *state = GenericXLogStart(index);
			Page page = GenericXLogRegisterBuffer(state, buf, 0);
			q = (S5vGcQueue)PageGetItem(page, PageGetItemId(page, FirstOffsetNumber));
			int k = FindGcEntry(q, blob, entries[i].kind);
			q->entries[k] = q->entries[q->count - 1];
			q->count--;
			GenericXLogFinish(state);
		}
		UnlockReleaseBuffer(buf);
		UnlockColdWrite(index);
		if (gone)
			deleted++;
	}
	StampWorkerTime(index, &S5vWorkerStateData::last_gc);
	LockRelease(&tag, ExclusiveLock, false);
	return deleted;
}

// ---- stats, VACUUM, verify ----------------------------------------------------------------------------------------

void ReadRemoteTierStats(Relation index, const S5vMetaPageData &meta, uint32 dim, RemoteTierStats *out) {
	memset(out, 0, sizeof(*out));
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	if (meta.cold_metapage != InvalidBlockNumber && meta.cold_metapage < nblocks) {
		Buffer buf = ReadBuffer(index, meta.cold_metapage);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		S5vColdMeta cm = GetColdMeta(index, BufferGetPage(buf), meta.cold_metapage, dim, nblocks);
		out->remote_rows = cm->remote_rows;
		out->segments = cm->remote_segments;
		out->remote_bytes = cm->remote_bytes;
		UnlockReleaseBuffer(buf);
	}
	BlockNumber walked = 0;
	for (BlockNumber blk = meta.worker.gc_queue_head; blk != InvalidBlockNumber;) {
		CheckChainStep(index, blk, nblocks, &walked, "collection queue leaves the index or loops");
		Buffer buf = ReadBuffer(index, blk);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		S5vGcQueue q = GetGcQueue(index, BufferGetPage(buf), blk);
		out->gc_pending += q->count;
		BlockNumber next = S5vPageGetOpaque(BufferGetPage(buf))->nextblkno;
		UnlockReleaseBuffer(buf);
		blk = next;
	}
}

void VacuumPartChain(Relation index, uint32 dim, BlockNumber meta_blkno, BlockNumber head, uint32 list,
                     IndexBulkDeleteCallback callback, void *callback_state, BufferAccessStrategy strategy,
                     int64 *removed, int64 *live) {
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	BlockNumber walked = 0;
	for (BlockNumber blk = head; blk != InvalidBlockNumber;) {
		vacuum_delay_point();
		CheckChainStep(index, blk, nblocks, &walked, "part chain leaves the index or loops");
		Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, blk, RBM_NORMAL, strategy);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		S5vPartLayout l;
		S5vColdPart p = GetColdPart(index, BufferGetPage(buf), blk, &l);
		if (p->list != list) {
			UnlockReleaseBuffer(buf);
			ReportCorruptCold(index, blk, "part page of another list");
		}
		ItemPointer tids = PartTids(p, l);
		uint16 *dead = (uint16 *)palloc(sizeof(uint16) * p->count);
		int ndead = 0;
		for (uint16 r = 0; r < p->count; r++) {
			if (PartRowFlags(p, l, r) & S5V_COLD_ROW_DEAD)
				continue;
			if (callback(&tids[r], callback_state))
				dead[ndead++] = r;
			else
				(*live)++;
		}
		BlockNumber next = S5vPageGetOpaque(BufferGetPage(buf))->nextblkno;
		LockBuffer(buf, BUFFER_LOCK_UNLOCK);
		if (ndead > 0)
			*removed += MarkColdRowsDead(index, dim, meta_blkno, buf, blk, true, dead, ndead);
		pfree(dead);
		ReleaseBuffer(buf);
		blk = next;
	}
}

void VacuumRemoteParts(Relation index, uint32 dim, const ColdTierInfo &tier, IndexBulkDeleteCallback callback,
                       void *callback_state, BufferAccessStrategy strategy, int64 *removed, int64 *live) {
	for (uint32 list = 0; list < tier.lists; list++) {
		EntryRef ref;
		ReadEntry(index, dim, tier, list, &ref);
		if (ref.e.parts_head != InvalidBlockNumber)
			VacuumPartChain(index, dim, tier.meta_blkno, ref.e.parts_head, list, callback, callback_state, strategy,
			                removed, live);
	}
}

int64 VerifyRemoteParts(Relation index, const IndexInfoCache &info, void (*fail)(void *arg, const char *detail),
                        void *arg, int64 max_reported, int64 *failures) {
	*failures = 0;
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	ColdTierInfo tier;
	ReadColdTier(index, meta, info.dimensions, &tier);
	int64 checked = 0;
	if (tier.meta_blkno == InvalidBlockNumber || tier.lists == 0)
		return 0;
	S5vMetaPageData m2 = meta;
	(void)m2;
	for (uint32 list = 0; list < tier.lists; list++) {
		EntryRef ref;
		ReadEntry(index, info.dimensions, tier, list, &ref);
		if (ref.e.parts_head == InvalidBlockNumber)
			continue;
		PartInfo *parts;
		int n = ReadPartChain(index, ref.e.parts_head, list, &parts);
		float **vecs = (float **)palloc0(sizeof(float *) * n);
		for (int i = 0; i < n; i++) {
			// One at a time, without the cache, errors caught so that each failure is a row.
			int save_cache = s5v_cache_size_kb;
			int save_mode = s5v_on_s5_error;
			s5v_cache_size_kb = 0;
			s5v_on_s5_error = S5V_ON_S5_ERROR_ERROR;
			MemoryContext oldcxt = CurrentMemoryContext;
			PG_TRY();
			{
				bool warned = false;
				FetchPartVectors(index, info, &parts[i], 1, &vecs[i], &warned, true);
			}
			PG_CATCH();
			{
				MemoryContextSwitchTo(oldcxt);
				ErrorData *ed = CopyErrorData();
				FlushErrorState();
				(*failures)++;
				if (*failures <= max_reported)
					fail(arg,
					     psprintf("list %u segment %u (part page %u): %s%s%s", list, parts[i].segment_no,
					              parts[i].blkno, ed->message, ed->detail ? ": " : "", ed->detail ? ed->detail : ""));
				FreeErrorData(ed);
			}
			PG_END_TRY();
			s5v_cache_size_kb = save_cache;
			s5v_on_s5_error = save_mode;
			if (vecs[i])
				pfree(vecs[i]);
			checked++;
		}
	}
	return checked;
}

} // namespace s5v::pg

using namespace s5v::pg;

Datum s5vector_offload(PG_FUNCTION_ARGS) {
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	Oid relid = PG_GETARG_OID(0);
	int64 max_segments = MaxSegmentsArg(fcinfo, 1);
	if (!S5Configured())
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("s5vector.s5_url is not set"),
		                errhint("Set s5vector.s5_url to an S5 node or portal to offload cold segments.")));
	RefuseDuringRecovery("offload", "s5vector_offload");
	Relation index = OpenOwnedIndex(relid, RowExclusiveLock);
	if (!OptionOffload(index))
		ereport(NOTICE,
		        (errmsg("index \"%s\" has offload = off: its cold tier stays local", RelationGetRelationName(index))));
	int64 rows = OffloadIndex(index, max_segments);
	relation_close(index, RowExclusiveLock);
	PG_RETURN_INT64(rows);
}

// Fill the cache with every remote part of the index; returns the parts now cached.
Datum s5vector_prewarm(PG_FUNCTION_ARGS) {
	Oid relid = PG_GETARG_OID(0);
	Relation index = OpenOwnedIndex(relid, AccessShareLock);
	if (s5v_cache_size_kb == 0)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("s5vector.cache_size is 0")));
	const IndexInfoCache &info = GetIndexInfo(index);
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	ColdTierInfo tier;
	ReadColdTier(index, meta, info.dimensions, &tier);
	int64 done = 0;
	bool warned = false;
	for (uint32 list = 0; tier.meta_blkno != InvalidBlockNumber && list < tier.lists; list++) {
		EntryRef ref;
		ReadEntry(index, info.dimensions, tier, list, &ref);
		if (ref.e.parts_head == InvalidBlockNumber)
			continue;
		PartInfo *parts;
		int n = ReadPartChain(index, ref.e.parts_head, list, &parts);
		float **vecs = (float **)palloc0(sizeof(float *) * n);
		FetchPartVectors(index, info, parts, n, vecs, &warned);
		for (int i = 0; i < n; i++)
			if (vecs[i]) {
				done++;
				pfree(vecs[i]);
			}
		pfree(vecs);
	}
	relation_close(index, AccessShareLock);
	PG_RETURN_INT64(done);
}

Datum s5vector_gc(PG_FUNCTION_ARGS) {
	Oid relid = PG_GETARG_OID(0);
	if (!S5Configured())
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("s5vector.s5_url is not set")));
	Relation index = OpenOwnedIndex(relid, RowExclusiveLock);
	int64 n = CollectGarbage(index);
	relation_close(index, RowExclusiveLock);
	PG_RETURN_INT64(n);
}

Datum s5vector_cache_reset(PG_FUNCTION_ARGS) {
	if (!superuser())
		ereport(ERROR,
		        (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("must be superuser to reset the s5vector cache")));
	PG_RETURN_INT64(CacheReset());
}
