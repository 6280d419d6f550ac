// Compaction of remote parts (TIERS.md "Compact"; docs/s5.md "Compaction"). Per list, a run of adjacent parts of
// its part chain that is worth rewriting (compact.h: dirty or small parts) becomes one new part:
//   1. under the cold write lock: the list's part chain is read (part pages only: TIDs, ages, flags, CIDs) and the
//      first run worth it is chosen and copied;
//   2. no lock held: the run's segments are fetched (cache, else one parallel download; each verified, decrypted,
//      decoded, identity-checked), the rows not dead at step 1 are encoded into one segment, encrypted with a fresh
//      key, its intent queued (WAL, flushed; with room on its queue page for the old blobs), uploaded, CID checked
//      (EncodeAndUploadSegment, shared with offload);
//   3. swap, one Generic WAL record of four pages under the cold write lock: the cold metapage (rows, dead rows,
//      remote rows, segments, bytes), the list's centroid page (its row counter; its parts_head when the run starts
//      the chain and had no live row), the run's first part page rewritten in place as the new part (its chain
//      pointer: past the run), and the queue page whose pending entry goes and where the run's old blobs are queued
//      as unreferenced, stamped now. The chain is re-read first: same parts at the same place (else the new blob is
//      queued as unreferenced and the list is left for later); rows that VACUUM marked dead since step 1 are dead in
//      the new part too. A run with no live row is unlinked instead (no upload: the predecessor part page, or the
//      list's parts_head, points past it).
//   4. WaitForScans, then the run's other part pages are freed (WAL, FSM).
// A scan reads a part chain one page at a time: before the swap it sees the old run (its pages stay intact until
// step 4), after it the new part; never both, never neither. A crash before 3 leaves the old parts referenced and a
// pending entry (an orphan for GC); after 3 the new part is referenced and the old blobs queued; between 3 and 4 the
// run's other part pages are leaked (unreferenced, never read).
extern "C" {
#include "postgres.h"

#include "access/generic_xlog.h"
#include "access/relation.h"
#include "access/xlog.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/indexfsm.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

#include "pg/compact.h"
#include "pg/cold_store.h"
#include "pg/guard.h"
#include "pg/gucs.h"
#include "pg/locks.h"
#include "pg/offload.h"
#include "pg/open_index.h"
#include "pg/s5_glue.h"

#include "core/s5/encryption.h"

#include <cstring>

extern "C" {
PG_FUNCTION_INFO_V1(s5vector_compact);
PGDLLEXPORT Datum s5vector_compact(PG_FUNCTION_ARGS);
}

namespace s5v::pg {

namespace {

uint32 LiveRows(const PartInfo &p) {
	uint32 live = 0;
	for (uint32 r = 0; r < p.rows; r++)
		if (!(p.flags[r] & S5V_COLD_ROW_DEAD))
			live++;
	return live;
}

// The first run of `parts` (a chain, newest first) worth rewriting (compact.h); false when there is none.
bool FindRun(const PartInfo *parts, int n, int *first, int *count) {
	const uint32 cap = RowsPerPart();
	const uint32 small = cap / kCompactSmallDivisor;
	for (int s = 0; s < n; s++) {
		uint32 live = 0;
		bool dirty = false;
		int k = 0;
		PartAgeCodec codec; // the live rows' ages: the new part's page must hold them with their encoding
		for (int i = s; i < n && k < kCompactMaxRunParts; i++) {
			uint32 l = LiveRows(parts[i]);
			bool d = (uint64)(parts[i].rows - l) * 100 >= (uint64)kCompactDeadPercent * parts[i].rows;
			if (!(d || l < small) || live + l > cap)
				break;
			PartAgeCodec with = codec;
			for (uint32 r = 0; r < parts[i].rows; r++)
				if (!(parts[i].flags[r] & S5V_COLD_ROW_DEAD))
					with.Add(parts[i].ages[r]);
			if (live + l > with.Capacity())
				break;
			codec = with;
			live += l;
			dirty = dirty || d;
			k++;
		}
		if (k > 0 && (dirty || k >= 2)) {
			*first = s;
			*count = k;
			return true;
		}
	}
	return false;
}

// A run chosen at step 1, copied (palloc'd).
struct CompactRun {
	uint32 list;
	int k;
	PartInfo parts[kCompactMaxRunParts];
	s5::BlobId old_blobs[kCompactMaxRunParts];
	uint32 segment_no; // the new part's: that of the run's newest part, whose page it takes
	uint32 live;       // rows of the new part
	ItemPointerData *tids;
	int64 *ages;
	uint8 *flags;
	float *vecs;
	uint8 *src_part; // where each new row comes from (to re-read its flags at the swap)
	uint16 *src_row;
};

// Step 1 (caller holds the cold write lock). False when the list has no run worth rewriting. *scanned grows by the
// rows of the part pages read.
bool FindCompactRun(Relation index, uint32 dim, const ColdTierInfo &tier, uint32 list, CompactRun *c, int64 *scanned) {
	EntryRef ref;
	ReadEntry(index, dim, tier, list, &ref);
	if (ref.e.parts_head == InvalidBlockNumber)
		return false;
	PartInfo *parts;
	int n = ReadPartChain(index, ref.e.parts_head, list, &parts);
	for (int i = 0; i < n; i++)
		*scanned += parts[i].rows;
	int first, count;
	if (!FindRun(parts, n, &first, &count))
		return false;
	c->list = list;
	c->k = count;
	c->live = 0;
	for (int t = 0; t < count; t++) {
		c->parts[t] = parts[first + t];
		c->live += LiveRows(c->parts[t]);
	}
	c->segment_no = c->parts[0].segment_no;
	return true;
}

// The old blobs of a run (parsed from the part pages' encrypted CIDs; XX002 when one is not valid).
void ParseOldBlobs(Relation index, CompactRun *c) {
	bool bad = false;
	BlockNumber bad_blk = InvalidBlockNumber;
	Guarded([&]() -> Status {
		for (int t = 0; t < c->k; t++) {
			s5::EncryptedCid ecid;
			Status st =
			    s5::ParseEncryptedCidBytes(std::span<const uint8_t>(c->parts[t].cid, c->parts[t].cid_len), &ecid);
			if (!st.ok() || (int64)ecid.encrypted.size != c->parts[t].remote_bytes) {
				bad = true;
				bad_blk = c->parts[t].blkno;
				return Status::Ok();
			}
			c->old_blobs[t] = ecid.encrypted;
		}
		return Status::Ok();
	});
	if (bad)
		ReportCorruptCold(index, bad_blk, "part page holds an invalid encrypted CID");
}

// Step 2's input: the live rows of the run with their vectors (fetched, verified). Raises when a segment cannot be
// had, whatever s5vector.on_s5_error says (compaction never drops rows it could not read).
void GatherLiveRows(Relation index, const IndexInfoCache &info, CompactRun *c) {
	uint32 dim = info.dimensions;
	float **vecs = (float **)palloc0(sizeof(float *) * c->k);
	int save_mode = s5v_on_s5_error;
	s5v_on_s5_error = S5V_ON_S5_ERROR_ERROR;
	PG_TRY();
	{
		bool warned = false;
		FetchPartVectors(index, info, c->parts, c->k, vecs, &warned);
	}
	PG_FINALLY();
	{ s5v_on_s5_error = save_mode; }
	PG_END_TRY();
	uint32 n = Max(c->live, 1u);
	c->tids = (ItemPointerData *)palloc(sizeof(ItemPointerData) * n);
	c->ages = (int64 *)palloc(sizeof(int64) * n);
	c->flags = (uint8 *)palloc(n);
	c->vecs = (float *)palloc_extended(sizeof(float) * dim * n, MCXT_ALLOC_HUGE);
	c->src_part = (uint8 *)palloc(n);
	c->src_row = (uint16 *)palloc(sizeof(uint16) * n);
	uint32 j = 0;
	for (int t = 0; t < c->k; t++) {
		const PartInfo &p = c->parts[t];
		if (vecs[t] == nullptr)
			elog(ERROR, "a remote segment of index \"%s\" could not be read", RelationGetRelationName(index));
		for (uint32 r = 0; r < p.rows; r++) {
			if (p.flags[r] & S5V_COLD_ROW_DEAD)
				continue;
			c->tids[j] = p.tids[r];
			c->ages[j] = p.ages[r];
			c->flags[j] = p.flags[r];
			memcpy(c->vecs + (Size)j * dim, vecs[t] + (Size)r * dim, sizeof(float) * dim);
			c->src_part[j] = (uint8)t;
			c->src_row[j] = (uint16)r;
			j++;
		}
		pfree(vecs[t]);
	}
	Assert(j == c->live);
	pfree(vecs);
}

bool SamePart(const PartInfo &a, const PartInfo &b) {
	return a.blkno == b.blkno && a.list == b.list && a.segment_no == b.segment_no && a.rows == b.rows &&
	       a.remote_bytes == b.remote_bytes && a.cid_len == b.cid_len && memcmp(a.cid, b.cid, a.cid_len) == 0 &&
	       memcmp(a.tids, b.tids, sizeof(ItemPointerData) * a.rows) == 0;
}

// Step 3 (caller holds the cold write lock). `qblk` is the queue page of the new blob's intent (live > 0) or a queue
// page with room for the old blobs (live == 0). False when the chain changed since step 1 (the new blob, if any, is
// then queued as unreferenced). On success *free_blocks / *nfree are the part pages to free after the wait.
bool SwapRun(Relation index, uint32 dim, CompactRun *c, const uint8 *cid, uint16 cid_len, const s5::BlobId &blob,
             BlockNumber qblk, BlockNumber *free_blocks, int *nfree) {
	bool upload = c->live > 0;
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	ColdTierInfo tier;
	ReadColdTier(index, meta, dim, &tier);
	bool same = tier.meta_blkno != InvalidBlockNumber && c->list < tier.lists;
	EntryRef ref;
	PartInfo *now = nullptr;
	int n = 0, s = -1;
	if (same) {
		ReadEntry(index, dim, tier, c->list, &ref);
		if (ref.e.parts_head != InvalidBlockNumber)
			n = ReadPartChain(index, ref.e.parts_head, c->list, &now);
		for (int i = 0; i < n; i++)
			if (now[i].blkno == c->parts[0].blkno)
				s = i;
		same = s >= 0 && s + c->k <= n;
		for (int t = 0; same && t < c->k; t++)
			same = SamePart(now[s + t], c->parts[t]);
	}
	Buffer qbuf = InvalidBuffer;
	if (same) {
		qbuf = ReadBuffer(index, qblk);
		LockBuffer(qbuf, BUFFER_LOCK_SHARE);
		S5vGcQueue q = GetGcQueue(index, BufferGetPage(qbuf), qblk);
		int have = upload ? FindGcEntry(q, blob, S5V_GC_PENDING) : 0;
		same = have >= 0 && (uint32)q->count - (upload ? 1 : 0) + (uint32)c->k <= q->capacity;
		UnlockReleaseBuffer(qbuf);
	}
	if (!same) {
		if (upload)
			AbandonPending(index, qblk, blob);
		return false;
	}
	BlockNumber next_after = s + c->k < n ? now[s + c->k].blkno : InvalidBlockNumber;
	// The new part's flags now: a row VACUUM marked dead since step 1 is dead in the new part too.
	for (uint32 j = 0; j < c->live; j++)
		c->flags[j] = now[s + c->src_part[j]].flags[c->src_row[j]];
	int64 old_rows = 0, old_bytes = 0;
	for (int t = 0; t < c->k; t++) {
		old_rows += c->parts[t].rows;
		old_bytes += c->parts[t].remote_bytes;
	}
	int64 dropped = old_rows - (int64)c->live;
	// The page that changes in the chain: the run's first (rewritten in place), else the predecessor of the run (its
	// pointer), else none (the list entry's parts_head).
	BlockNumber pblk = upload ? c->parts[0].blkno : (s > 0 ? now[s - 1].blkno : InvalidBlockNumber);

	Buffer metabuf = ReadBuffer(index, tier.meta_blkno);
	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
	S5vColdMeta cm0 =
	    GetColdMeta(index, BufferGetPage(metabuf), tier.meta_blkno, dim, RelationGetNumberOfBlocks(index));
	if (cm0->dead_rows < dropped || cm0->cold_rows < dropped || cm0->remote_rows < old_rows ||
	    cm0->remote_segments < c->k) {
		UnlockReleaseBuffer(metabuf);
		ReportCorruptCold(index, tier.meta_blkno, "cold metapage counters lower than the parts they count");
	}
	Buffer cbuf = ReadBuffer(index, ref.cblk);
	LockBuffer(cbuf, BUFFER_LOCK_EXCLUSIVE);
	Buffer pbuf = InvalidBuffer;
	if (pblk != InvalidBlockNumber) {
		pbuf = ReadBuffer(index, pblk);
		LockBuffer(pbuf, BUFFER_LOCK_EXCLUSIVE);
	}
	qbuf = ReadBuffer(index, qblk);
	LockBuffer(qbuf, BUFFER_LOCK_EXCLUSIVE);

	GenericXLogState *state = GenericXLogStart(index);
	Page mpage = GenericXLogRegisterBuffer(state, metabuf, 0);
	Page cpage = GenericXLogRegisterBuffer(state, cbuf, 0);
	Page ppage =
	    pbuf != InvalidBuffer ? GenericXLogRegisterBuffer(state, pbuf, upload ? GENERIC_XLOG_FULL_IMAGE : 0) : nullptr;
	Page qpage = GenericXLogRegisterBuffer(state, qbuf, 0);
	S5vColdMeta cm = (S5vColdMeta)PageGetItem(mpage, PageGetItemId(mpage, FirstOffsetNumber));
	S5vListInfo e =
	    CentroidEntry((S5vCentroids)PageGetItem(cpage, PageGetItemId(cpage, FirstOffsetNumber)), ref.slot, dim);
	S5vGcQueue q = (S5vGcQueue)PageGetItem(qpage, PageGetItemId(qpage, FirstOffsetNumber));
	if (upload) {
		// The run's first page becomes the new part (FindRun checked the ages' encoding); its pending entry goes.
		WritePartPage(
		    ppage, NewPart{c->list, c->segment_no, cid, cid_len, blob, c->tids, c->ages, c->flags, c->live, next_after},
		    q, "a compacted part");
	} else if (ppage != nullptr) {
		S5vPageGetOpaque(ppage)->nextblkno = next_after;
	} else {
		e->parts_head = next_after;
	}
	TimestampTz stamp = GetCurrentTimestamp();
	for (int t = 0; t < c->k; t++) {
		S5vGcEntryData *qe = &q->entries[q->count++];
		memset(qe, 0, sizeof(*qe));
		memcpy(qe->hash, c->old_blobs[t].hash.data(), 32);
		qe->size = c->old_blobs[t].size;
		qe->queued = stamp;
		qe->kind = S5V_GC_UNREFERENCED;
	}
	e->rows -= dropped;
	cm->cold_rows -= dropped;
	cm->dead_rows -= dropped;
	cm->remote_rows -= dropped;
	cm->remote_segments -= c->k - (upload ? 1 : 0);
	cm->remote_bytes += (upload ? (int64)blob.size : 0) - old_bytes;
	GenericXLogFinish(state);
	UnlockReleaseBuffer(qbuf);
	if (pbuf != InvalidBuffer)
		UnlockReleaseBuffer(pbuf);
	UnlockReleaseBuffer(cbuf);
	UnlockReleaseBuffer(metabuf);
	*nfree = 0;
	for (int t = upload ? 1 : 0; t < c->k; t++)
		free_blocks[(*nfree)++] = c->parts[t].blkno;
	return true;
}

// The cold counters of an index (cold metapage).
struct CompactCounters {
	int64 cold_rows;
	int64 dead_rows;
	int64 remote_rows;
	int64 remote_segments;
};

bool ReadCompactCounters(Relation index, const ColdTierInfo &tier, uint32 dim, CompactCounters *out) {
	memset(out, 0, sizeof(*out));
	if (tier.meta_blkno == InvalidBlockNumber)
		return false;
	Buffer buf = ReadBuffer(index, tier.meta_blkno);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	S5vColdMeta cm = GetColdMeta(index, BufferGetPage(buf), tier.meta_blkno, dim, RelationGetNumberOfBlocks(index));
	out->cold_rows = cm->cold_rows;
	out->dead_rows = cm->dead_rows;
	out->remote_rows = cm->remote_rows;
	out->remote_segments = cm->remote_segments;
	UnlockReleaseBuffer(buf);
	return true;
}

bool SameCounters(const CompactCounters &a, const CompactCounters &b) {
	return a.cold_rows == b.cold_rows && a.dead_rows == b.dead_rows && a.remote_rows == b.remote_rows &&
	       a.remote_segments == b.remote_segments;
}

// The worker's sweep over an index's lists (this process's memory): it resumes at next_list, and a wrap (list 0 to
// the last) that found nothing worth it while the counters stayed those of its start makes the index idle: later
// passes stop after reading the counters, until they change.
struct CompactSweep {
	Oid relid;
	Oid relfilenode;
	uint32 next_list;
	bool clean;           // this wrap has rewritten nothing, skipped no list, seen no counter change
	bool idle;            // the last wrap was clean: nothing to do while the counters are `wrap`
	CompactCounters wrap; // counters when this wrap started
};
constexpr int kSweeps = 64;
CompactSweep sweeps[kSweeps];
int sweep_next = 0;

CompactSweep *SweepFor(Relation index, const CompactCounters &now) {
	Oid relid = RelationGetRelid(index), node = index->rd_node.relNode;
	for (int i = 0; i < kSweeps; i++)
		if (sweeps[i].relid == relid && sweeps[i].relfilenode == node)
			return &sweeps[i];
	CompactSweep *s = &sweeps[sweep_next];
	sweep_next = (sweep_next + 1) % kSweeps;
	s->relid = relid;
	s->relfilenode = node;
	s->next_list = 0;
	s->clean = true;
	s->idle = false;
	s->wrap = now;
	return s;
}

} // namespace

int64 CompactIndex(Relation index, int64 max_segments, int64 max_rows, bool worker) {
	if (!S5Configured() || !OptionOffload(index) || max_segments <= 0 || max_rows <= 0)
		return 0;
	if (RecoveryInProgress())
		ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION), errmsg("cannot compact during recovery"),
		                errhint("Run s5vector_compact on the primary.")));
	const IndexInfoCache &info = GetIndexInfo(index);
	uint32 dim = info.dimensions;
	s5::SegmentMetric metric;
	if (!SegmentMetricFor(info.metric, &metric))
		return 0; // no remote part can exist
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	ColdTierInfo tier;
	ReadColdTier(index, meta, dim, &tier);
	CompactCounters counters;
	if (!ReadCompactCounters(index, tier, dim, &counters) || tier.lists == 0 || counters.remote_segments == 0)
		return 0;
	CompactSweep *sweep = nullptr;
	if (worker) {
		sweep = SweepFor(index, counters);
		if (sweep->idle && SameCounters(sweep->wrap, counters))
			return 0; // nothing changed since a wrap found nothing worth it: no part page read, no network
		if (sweep->idle) {
			sweep->idle = false;
			sweep->next_list = 0;
			sweep->clean = true;
			sweep->wrap = counters;
		} else if (!SameCounters(sweep->wrap, counters)) {
			sweep->clean = false; // changed during this wrap: lists behind the cursor may have work now
		}
	}
	LOCKTAG tag;
	OffloadLockTag(index, &tag);
	if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL) {
		ereport(WARNING, (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
		                  errmsg("index \"%s\" is being offloaded, compacted or collected by another session; "
		                         "compaction skipped",
		                         RelationGetRelationName(index))));
		return 0;
	}
	// As offload: an index that is not valid (DROP INDEX CONCURRENTLY under way) gets no new blob, since the blob
	// ledger copied what it referenced when the drop began.
	if (!get_index_isvalid(RelationGetRelid(index))) {
		LockRelease(&tag, ExclusiveLock, false);
		return 0;
	}
	// Budgets: rewrites (max_segments), rows of the rewritten runs (max_rows), and for the worker the part-page rows
	// read to look for runs (kCompactScanFactor * max_rows).
	int64 rows_done = 0, rows_read = 0, runs = 0, scanned = 0;
	int64 max_scanned =
	    worker && max_rows < PG_INT64_MAX / kCompactScanFactor ? max_rows * kCompactScanFactor : PG_INT64_MAX;
	bool budget_hit = false, skipped_list = false;
	uint32 list = worker ? sweep->next_list : 0;
	if (list >= tier.lists)
		list = 0;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "s5vector compact", ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	for (; list < tier.lists && !budget_hit; list++) {
		if (scanned >= max_scanned) {
			budget_hit = true; // this list next time
			break;
		}
		// Each rewrite drops dead rows or parts, so a list's runs run out; the bound is a guard.
		for (int iter = 0; iter < 4096; iter++) {
			if (runs >= max_segments || rows_read >= max_rows) {
				budget_hit = true;
				break;
			}
			CHECK_FOR_INTERRUPTS();
			MemoryContextReset(cxt);
			CompactRun *c = (CompactRun *)palloc0(sizeof(CompactRun));
			LockColdWrite(index);
			ReadMetaPage(index, &meta);
			ColdTierInfo now;
			ReadColdTier(index, meta, dim, &now);
			bool found = now.meta_blkno != InvalidBlockNumber && list < now.lists &&
			             FindCompactRun(index, dim, now, list, c, &scanned);
			UnlockColdWrite(index);
			if (!found)
				break;
			ParseOldBlobs(index, c);
			GatherLiveRows(index, info, c);
			uint8 cid[S5V_PART_CID_MAX];
			uint16 cid_len = 0;
			s5::BlobId blob;
			BlockNumber qblk = InvalidBlockNumber;
			if (c->live > 0)
				EncodeAndUploadSegment(index, info, meta, c->list, c->segment_no, c->live, c->tids, c->vecs,
				                       (uint32)c->k, cid, &cid_len, &blob, &qblk);
			BlockNumber free_blocks[kCompactMaxRunParts];
			int nfree = 0;
			LockColdWrite(index);
			if (c->live == 0)
				qblk = GcQueuePageWithRoom(index, (uint32)c->k);
			bool swapped = SwapRun(index, dim, c, cid, cid_len, blob, qblk, free_blocks, &nfree);
			UnlockColdWrite(index);
			if (!swapped) {
				skipped_list = true; // the list changed under us: left to a later call
				break;
			}
			WaitForScans(index);
			for (int i = 0; i < nfree; i++)
				FreeColdPage(index, free_blocks[i], S5V_PAGE_COLD_PART, S5V_TUPLE_COLD_PART);
			rows_done += c->live;
			for (int t = 0; t < c->k; t++)
				rows_read += c->parts[t].rows;
			runs++;
		}
		if (budget_hit)
			break; // this list again next time (it may have more runs)
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	if (runs > 0)
		IndexFreeSpaceMapVacuum(index);
	if (worker) {
		if (runs > 0 || skipped_list)
			sweep->clean = false;
		if (list >= tier.lists) {
			// A wrap ended: idle when it found nothing; else the next wrap starts from the counters now.
			if (sweep->clean) {
				sweep->idle = true;
			} else {
				ReadMetaPage(index, &meta);
				ReadColdTier(index, meta, dim, &tier);
				(void)ReadCompactCounters(index, tier, dim, &sweep->wrap);
				sweep->clean = true;
			}
			sweep->next_list = 0;
		} else {
			sweep->next_list = list;
		}
	}
	LockRelease(&tag, ExclusiveLock, false);
	return rows_done;
}

} // namespace s5v::pg

using namespace s5v::pg;

Datum s5vector_compact(PG_FUNCTION_ARGS) {
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	Oid relid = PG_GETARG_OID(0);
	int64 max_segments = MaxSegmentsArg(fcinfo, 1);
	RefuseDuringRecovery("compact", "s5vector_compact");
	Relation index = OpenOwnedIndex(relid, RowExclusiveLock);
	int64 rows = CompactIndex(index, max_segments, PG_INT64_MAX, false);
	relation_close(index, RowExclusiveLock);
	PG_RETURN_INT64(rows);
}
