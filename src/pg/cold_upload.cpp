// CREATE INDEX's direct upload of the cold part (see cold_upload.h).
extern "C" {
#include "postgres.h"

#include "catalog/pg_operator_d.h"
#include "catalog/pg_type_d.h"
#include "commands/progress.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplesort.h"
}

#include "pg/cold_build.h"
#include "pg/cold_upload.h"
#include "pg/offload.h"
#include "pg/s5_glue.h"

namespace s5v::pg {

// A sort item (bytea): list and heap TID big-endian first, so that bytea order is (list, TID); then age, flags and
// the vector in native order.
#define KEY_LIST 0
#define KEY_BLOCK 4
#define KEY_OFFSET 8
#define KEY_AGE 10
#define KEY_FLAGS 18
#define KEY_VEC 19

struct ColdUploadState {
	IndexInfoCache info;
	uint32 lists;
	Tuplesortstate *sort;
	int64 *counts; // rows of each list
	int64 added;
	char *item; // one sort item, reused
	Size item_size;
};

ColdUploadState *ColdUploadBegin(Relation index, const IndexInfoCache &info, uint32 lists, Size memory_limit) {
	s5::SegmentMetric metric;
	if (lists == 0 || !S5Configured() || !OptionOffload(index) || !SegmentMetricFor(info.metric, &metric))
		return nullptr;
	ColdUploadState *u = (ColdUploadState *)palloc0(sizeof(ColdUploadState));
	u->info = info;
	u->lists = lists;
	u->counts = (int64 *)palloc0(sizeof(int64) * lists);
	int work_kb = (int)Max((Size)64, Min(memory_limit / 1024, (Size)MAX_KILOBYTES));
	u->sort = tuplesort_begin_datum(BYTEAOID, ByteaLessOperator, InvalidOid, false, work_kb, NULL, TUPLESORT_NONE);
	u->item_size = VARHDRSZ + KEY_VEC + sizeof(float) * info.dimensions;
	u->item = (char *)palloc(u->item_size);
	SET_VARSIZE(u->item, u->item_size);
	return u;
}

void ColdUploadAdd(ColdUploadState *u, uint32 list, const ItemPointerData *tid, int64 age, uint8 row_flags,
                   const float *vec) {
	uint8 *d = (uint8 *)VARDATA(u->item);
	uint32 blk = ItemPointerGetBlockNumberNoCheck(tid);
	uint16 off = ItemPointerGetOffsetNumberNoCheck(tid);
	for (int i = 0; i < 4; i++) {
		d[KEY_LIST + i] = (uint8)(list >> (24 - 8 * i));
		d[KEY_BLOCK + i] = (uint8)(blk >> (24 - 8 * i));
	}
	d[KEY_OFFSET] = (uint8)(off >> 8);
	d[KEY_OFFSET + 1] = (uint8)off;
	memcpy(d + KEY_AGE, &age, sizeof(int64));
	d[KEY_FLAGS] = row_flags & S5V_COLD_ROW_AGE_NULL;
	memcpy(d + KEY_VEC, vec, sizeof(float) * u->info.dimensions);
	tuplesort_putdatum(u->sort, PointerGetDatum(u->item), false);
	u->counts[list]++;
	u->added++;
}

namespace {

// One part of a list, gathered from the sorted stream.
struct PartBuffer {
	uint32 n;
	ItemPointerData *tids;
	int64 *ages;
	uint8 *flags;
	float *vecs;
};

// Rows of the next part when `rem` rows of the list are left: as many parts as one page's rows need, equal sizes.
uint32 TargetRows(int64 rem) {
	int64 cap = RowsPerPart();
	int64 parts = Max((int64)1, (rem + cap - 1) / cap);
	return (uint32)Min(cap, (rem + parts - 1) / parts);
}

// Upload one part (no lock held), then write its part page and count it in its list entry and the cold metapage.
void FlushPart(Relation index, const ColdUploadState *u, const ColdAppendTarget &target, const S5vMetaPageData &meta,
               uint32 list, uint32 segment_no, PartBuffer *b) {
	uint32 dim = u->info.dimensions;
	uint8 cid[S5V_PART_CID_MAX];
	uint16 cid_len = 0;
	s5::BlobId blob;
	EncodeAndUploadSegment(index, u->info, meta, list, segment_no, b->n, b->tids, b->vecs, 0, cid, &cid_len, &blob,
	                       nullptr);
	// Lock order of every cold change: cold metapage, centroid page, new page.
	Buffer metabuf = ReadBuffer(index, target.meta_blkno);
	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
	BlockNumber cblk = target.centroid_head + list / target.lists_per_page;
	uint32 slot = list % target.lists_per_page;
	Buffer cbuf = ReadBuffer(index, cblk);
	LockBuffer(cbuf, BUFFER_LOCK_EXCLUSIVE);
	S5vCentroids c =
	    (S5vCentroids)GetColdItem(index, BufferGetPage(cbuf), cblk, S5V_PAGE_CENTROIDS, S5V_TUPLE_CENTROIDS);
	if (c->first_list != list - slot || slot >= c->count)
		ReportCorruptCold(index, cblk, "centroid page does not hold the list it should");
	S5vListInfo e = CentroidEntry(c, slot, dim);
	S5vColdMeta cm =
	    GetColdMeta(index, BufferGetPage(metabuf), target.meta_blkno, dim, RelationGetNumberOfBlocks(index));
	LockRelationForExtension(index, ExclusiveLock);
	Buffer pbuf = ReadBufferExtended(index, MAIN_FORKNUM, P_NEW, RBM_NORMAL, NULL);
	LockBuffer(pbuf, BUFFER_LOCK_EXCLUSIVE);
	UnlockRelationForExtension(index, ExclusiveLock);
	// ColdUploadFinish checked the ages' encoding; no intent to end (none is logged inside CREATE INDEX).
	WritePartPage(BufferGetPage(pbuf),
	              NewPart{list, segment_no, cid, cid_len, blob, b->tids, b->ages, b->flags, b->n, e->parts_head},
	              nullptr, "a built part");
	e->parts_head = BufferGetBlockNumber(pbuf);
	e->rows += b->n;
	for (uint32 r = 0; r < b->n; r++)
		if (!(b->flags[r] & S5V_COLD_ROW_AGE_NULL)) {
			e->min_age = Min(e->min_age, b->ages[r]);
			e->max_age = Max(e->max_age, b->ages[r]);
		}
	if (target.count_in_meta)
		cm->cold_rows += b->n;
	cm->remote_rows += b->n;
	cm->remote_segments++;
	cm->remote_bytes += (int64)blob.size;
	// Inside CREATE INDEX: no WAL now, every page is logged at the build's end (log_newpage_range).
	MarkBufferDirty(pbuf);
	MarkBufferDirty(cbuf);
	MarkBufferDirty(metabuf);
	UnlockReleaseBuffer(pbuf);
	UnlockReleaseBuffer(cbuf);
	UnlockReleaseBuffer(metabuf);
	b->n = 0;
}

} // namespace

int64 ColdUploadFinish(ColdUploadState *u, Relation index, const ColdAppendTarget &target) {
	uint32 dim = u->info.dimensions;
	tuplesort_performsort(u->sort);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, S5V_PHASE_COLD_UPLOAD);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL, u->added);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, 0);
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	const uint32 cap = RowsPerPart();
	PartBuffer b;
	b.n = 0;
	b.tids = (ItemPointerData *)palloc(sizeof(ItemPointerData) * cap);
	b.ages = (int64 *)palloc(sizeof(int64) * cap);
	b.flags = (uint8 *)palloc(cap);
	b.vecs = (float *)palloc_extended(sizeof(float) * dim * cap, MCXT_ALLOC_HUGE);
	int64 done = 0, rem = 0;
	uint32 cur = 0, segment_no = 0, want = 0;
	bool have_list = false;
	PartAgeCodec codec;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "s5vector cold upload", ALLOCSET_DEFAULT_SIZES);
	auto flush = [&]() {
		if (b.n == 0)
			return;
		MemoryContext old = MemoryContextSwitchTo(cxt);
		FlushPart(index, u, target, meta, cur, segment_no++, &b);
		MemoryContextSwitchTo(old);
		MemoryContextReset(cxt);
		codec = PartAgeCodec();
		want = TargetRows(rem);
		pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, done);
	};
	for (;;) {
		CHECK_FOR_INTERRUPTS();
		Datum d;
		bool isnull;
		if (!tuplesort_getdatum(u->sort, true, &d, &isnull, NULL))
			break;
		bytea *item = DatumGetByteaPP(d);
		if (VARSIZE_ANY_EXHDR(item) != u->item_size - VARHDRSZ)
			elog(ERROR, "s5vector: a sorted cold row has the wrong size");
		const uint8 *p = (const uint8 *)VARDATA_ANY(item);
		uint32 list = ((uint32)p[KEY_LIST] << 24) | ((uint32)p[KEY_LIST + 1] << 16) | ((uint32)p[KEY_LIST + 2] << 8) |
		              p[KEY_LIST + 3];
		if (list >= u->lists)
			elog(ERROR, "s5vector: a sorted cold row of list %u of %u", list, u->lists);
		int64 age;
		memcpy(&age, p + KEY_AGE, sizeof(int64));
		if (!have_list || list != cur) {
			flush();
			have_list = true;
			cur = list;
			segment_no = 0;
			rem = u->counts[list];
			want = TargetRows(rem);
			codec = PartAgeCodec();
		}
		PartAgeCodec with = codec;
		with.Add(age);
		if (b.n >= want || b.n + 1 > with.Capacity()) {
			flush();
			with = PartAgeCodec();
			with.Add(age);
		}
		codec = with;
		uint32 blk = ((uint32)p[KEY_BLOCK] << 24) | ((uint32)p[KEY_BLOCK + 1] << 16) | ((uint32)p[KEY_BLOCK + 2] << 8) |
		             p[KEY_BLOCK + 3];
		ItemPointerSet(&b.tids[b.n], blk, (OffsetNumber)(((uint16)p[KEY_OFFSET] << 8) | p[KEY_OFFSET + 1]));
		b.ages[b.n] = age;
		b.flags[b.n] = p[KEY_FLAGS];
		memcpy(b.vecs + (Size)b.n * dim, p + KEY_VEC, sizeof(float) * dim);
		b.n++;
		rem--;
		done++;
		pfree(DatumGetPointer(d));
	}
	flush();
	tuplesort_end(u->sort);
	MemoryContextDelete(cxt);
	if (done != u->added)
		elog(ERROR, "s5vector: %lld cold rows sorted, %lld uploaded", (long long)u->added, (long long)done);
	return done;
}

} // namespace s5v::pg
