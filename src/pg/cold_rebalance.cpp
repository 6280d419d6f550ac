// s5vector_rebalance(index) and s5vector_list_stats(index): see cold_rebalance.h.
//
// One step, under a ShareUpdateExclusiveLock on the index (one step at a time; scans, inserts and VACUUM go on):
//   1. under the cold write lock, read the list directory and every live row once (per-list count, mean, spread;
//      the rows of lists past S5V_REBALANCE_SPLIT_FACTOR x the mean are kept for 2-means);
//   2. new centroids: a split list keeps its chain with the first 2-means centroid, a new list (empty chain) gets
//      the second; a list whose mean drifted from its centroid by more than half its rows' spread gets its mean;
//   3. write a new run of centroid pages (the entries copied, chains shared) and point the cold metapage at it in
//      one record (InstallLists);
//   4. every live row that is no longer in the list of its nearest centroid (only the changed centroids can beat
//      an unchanged one) is appended to that list (ColdAppendRow, WAL);
//   5. release the cold write lock, WaitForScans (a scan that read the old place before the add is waited for);
//   6. under the cold write lock again, the old copies are marked dead (one record per row page with the cold
//      metapage's dead_rows, as VACUUM marks rows), each after checking that its slot still holds that heap TID.
// A crash after 3 leaves rows at both places (scans deduplicate by heap TID; verify counts them as duplicates) and
// rows not yet in their nearest list: the next step finds them in its pass 1 and finishes the moves (a duplicate's
// copy outside its nearest list is dropped in step 6). The old centroid run is not referenced any more (not reused
// yet: it waits for page reuse, issue 8 item 5).
extern "C" {
#include "postgres.h"

#include "access/generic_xlog.h"
#include "access/relation.h"
#include "access/xlog.h"
#include "catalog/pg_am.h"
#include "catalog/pg_authid.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

#include "pg/open_index.h"
#include "pg/cold_pages.h"
#include "pg/cold_rebalance.h"
#include "pg/cold_store.h"
#include "pg/guard.h"
#include "pg/index.h"
#include "pg/locks.h"

#include "core/kmeans.h"

#include <cmath>

extern "C" {
PG_FUNCTION_INFO_V1(s5vector_rebalance);
PGDLLEXPORT Datum s5vector_rebalance(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(s5vector_list_stats);
PGDLLEXPORT Datum s5vector_list_stats(PG_FUNCTION_ARGS);
}

namespace s5v::pg {

namespace {

// The trained lists' entries and centroids, from the centroid pages (palloc'd).
void ReadEntries(Relation index, uint32 dim, const ColdTierInfo &tier, S5vListInfoData **entries, float **centroids) {
	uint32 n = Max(tier.lists, 1u);
	*entries = (S5vListInfoData *)palloc_extended(sizeof(S5vListInfoData) * n, MCXT_ALLOC_HUGE);
	if (centroids)
		*centroids = (float *)palloc_extended(sizeof(float) * dim * n, MCXT_ALLOC_HUGE);
	for (uint32 p = 0; p < tier.centroid_pages; p++) {
		BlockNumber blk = tier.centroid_head + p;
		Buffer buf = ReadBuffer(index, blk);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		S5vCentroids c =
		    (S5vCentroids)GetColdItem(index, BufferGetPage(buf), blk, S5V_PAGE_CENTROIDS, S5V_TUPLE_CENTROIDS);
		uint32 expect = Min(tier.lists_per_page, tier.lists - p * tier.lists_per_page);
		if (c->first_list != p * tier.lists_per_page || c->count != expect) {
			UnlockReleaseBuffer(buf);
			ReportCorruptCold(index, blk, "centroid page does not hold its lists");
		}
		for (uint32 s = 0; s < c->count; s++) {
			S5vListInfo e = CentroidEntry(c, s, dim);
			(*entries)[c->first_list + s] = *e;
			if (centroids)
				memcpy(*centroids + (Size)(c->first_list + s) * dim, EntryCentroid(e), sizeof(float) * dim);
		}
		UnlockReleaseBuffer(buf);
	}
}

// A new contiguous run of centroid pages holding these entries and centroids (each page one record, full image).
BlockNumber WriteRun(Relation index, uint32 dim, const S5vListInfoData *entries, const float *centroids, uint32 lists) {
	uint32 per = ListsPerCentroidPage(dim);
	uint32 npages = (lists + per - 1) / per;
	BlockNumber first = InvalidBlockNumber;
	LockRelationForExtension(index, ExclusiveLock);
	for (uint32 p = 0; p < npages; p++) {
		Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, P_NEW, RBM_NORMAL, NULL);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		BlockNumber blk = BufferGetBlockNumber(buf);
		if (p == 0)
			first = blk;
		else if (blk != first + p)
			elog(ERROR, "s5vector: centroid pages are not contiguous (%u after %u)", blk, first + p - 1);
		GenericXLogState *state = GenericXLogStart(index);
		Page page = GenericXLogRegisterBuffer(state, buf, GENERIC_XLOG_FULL_IMAGE);
		S5vCentroids c = (S5vCentroids)InitColdPage(page, S5V_PAGE_CENTROIDS, S5V_TUPLE_CENTROIDS);
		c->first_list = p * per;
		c->count = (uint16)Min(per, lists - p * per);
		for (uint32 s = 0; s < c->count; s++) {
			S5vListInfo e = CentroidEntry(c, s, dim);
			*e = entries[p * per + s];
			memcpy(EntryCentroid(e), centroids + (Size)(p * per + s) * dim, sizeof(float) * dim);
		}
		GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
	}
	UnlockRelationForExtension(index, ExclusiveLock);
	return first;
}

// One live row as a chain walk hands it out (copied out of its page; no page is locked while `fn` runs).
struct WalkedRow {
	uint32 list;
	BlockNumber blk;
	uint16 slot;
	ItemPointerData tid;
	int64 age;
	uint8 flags;
	const float *vec;
};

// Every live row of list `list`'s chain, a page at a time: the page's rows are copied, the page released, then fn
// runs for each (it may append to other lists).
template <typename Fn> void WalkList(Relation index, uint32 dim, uint32 list, BlockNumber head, Fn &&fn) {
	uint32 cap = RowsPerPage(dim);
	ItemPointerData *tids = (ItemPointerData *)palloc(sizeof(ItemPointerData) * cap);
	int64 *ages = (int64 *)palloc(sizeof(int64) * cap);
	uint8 *flags = (uint8 *)palloc(cap);
	float *vecs = (float *)palloc(sizeof(float) * dim * cap);
	BlockNumber walked = 0;
	for (BlockNumber blk = head; blk != InvalidBlockNumber;) {
		CHECK_FOR_INTERRUPTS();
		BlockNumber nblocks = RelationGetNumberOfBlocks(index);
		CheckChainStep(index, blk, nblocks, &walked, "list chain leaves the index or loops");
		Buffer buf = ReadBuffer(index, blk);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		S5vRowsLayout l;
		S5vColdRows rows = GetColdRows(index, BufferGetPage(buf), blk, dim, &l);
		if (rows->list != list) {
			UnlockReleaseBuffer(buf);
			ReportCorruptCold(index, blk, "row page of another list");
		}
		uint16 count = rows->count;
		memcpy(tids, RowsTids(rows, l), sizeof(ItemPointerData) * count);
		memcpy(ages, RowsAges(rows, l), sizeof(int64) * count);
		memcpy(flags, RowsFlags(rows, l), count);
		memcpy(vecs, RowsVectors(rows, l), sizeof(float) * dim * count);
		BlockNumber next = S5vPageGetOpaque(BufferGetPage(buf))->nextblkno;
		UnlockReleaseBuffer(buf);
		for (uint16 r = 0; r < count; r++) {
			if (flags[r] & S5V_COLD_ROW_DEAD)
				continue;
			WalkedRow w{list, blk, r, tids[r], ages[r], flags[r], vecs + (Size)r * dim};
			fn(w);
		}
		blk = next;
	}
	pfree(tids);
	pfree(ages);
	pfree(flags);
	pfree(vecs);
}

struct Removal {
	BlockNumber blk;
	uint16 slot;
	ItemPointerData tid;
};

int CompareRemovals(const void *a, const void *b) {
	const Removal *x = (const Removal *)a, *y = (const Removal *)b;
	if (x->blk != y->blk)
		return x->blk < y->blk ? -1 : 1;
	return (int)x->slot - (int)y->slot;
}

// Step 6: mark the old copies dead, one record per row page with the cold metapage's dead_rows. Caller holds the
// cold write lock.
void MarkRemoved(Relation index, uint32 dim, BlockNumber meta_blkno, Removal *rm, int64 n) {
	qsort(rm, n, sizeof(Removal), CompareRemovals);
	for (int64 i = 0; i < n;) {
		int64 j = i;
		while (j < n && rm[j].blk == rm[i].blk)
			j++;
		CHECK_FOR_INTERRUPTS();
		Buffer metabuf = ReadBuffer(index, meta_blkno);
		LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
		BlockNumber nblocks = RelationGetNumberOfBlocks(index);
		(void)GetColdMeta(index, BufferGetPage(metabuf), meta_blkno, dim, nblocks);
		Buffer buf = ReadBuffer(index, rm[i].blk);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		S5vRowsLayout l;
		(void)GetColdRows(index, BufferGetPage(buf), rm[i].blk, dim, &l);
		GenericXLogState *state = GenericXLogStart(index);
		Page mpage = GenericXLogRegisterBuffer(state, metabuf, 0);
		Page page = GenericXLogRegisterBuffer(state, buf, 0);
		S5vColdMeta cm = (S5vColdMeta)PageGetItem(mpage, PageGetItemId(mpage, FirstOffsetNumber));
		S5vColdRows rows = (S5vColdRows)PageGetItem(page, PageGetItemId(page, FirstOffsetNumber));
		ItemPointer tids = RowsTids(rows, l);
		uint8 *flags = RowsFlags(rows, l);
		int marked = 0;
		for (int64 k = i; k < j; k++) {
			uint16 s = rm[k].slot;
			if (!(s < rows->count && ItemPointerEquals(&tids[s], &rm[k].tid))) {
				// VACUUM compacted the page during the wait: the row slid down, same page
				s = rows->count;
				for (uint16 r = 0; r < rows->count && r <= rm[k].slot; r++)
					if (ItemPointerEquals(&tids[r], &rm[k].tid) && !(flags[r] & S5V_COLD_ROW_DEAD)) {
						s = r;
						break;
					}
			}
			if (s < rows->count && !(flags[s] & S5V_COLD_ROW_DEAD)) {
				flags[s] |= S5V_COLD_ROW_DEAD;
				marked++;
			}
		}
		cm->dead_rows = Min(cm->cold_rows, cm->dead_rows + marked);
		GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
		UnlockReleaseBuffer(metabuf);
		i = j;
	}
}

// The cold metapage's rebalance_pending (one record): set before new centroids are installed, cleared once the
// moves are done; a step that finds it set compares every row with every centroid.
void SetRebalancePending(Relation index, uint32 dim, BlockNumber meta_blkno, int64 value) {
	Buffer buf = ReadBuffer(index, meta_blkno);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	(void)GetColdMeta(index, BufferGetPage(buf), meta_blkno, dim, RelationGetNumberOfBlocks(index));
	GenericXLogState *state = GenericXLogStart(index);
	Page page = GenericXLogRegisterBuffer(state, buf, 0);
	((S5vColdMeta)PageGetItem(page, PageGetItemId(page, FirstOffsetNumber)))->rebalance_pending = value;
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
}

uint64 TidKey(const ItemPointerData *t) {
	return ((uint64)ItemPointerGetBlockNumber(t) << 16) | ItemPointerGetOffsetNumber(t);
}

// Where pass 1 saw a row (full mode: every row, to find the heap TIDs held twice).
struct SeenRow {
	uint64 key;
	BlockNumber blk;
	uint32 slot;
};

int CompareSeen(const void *a, const void *b) {
	const SeenRow *x = (const SeenRow *)a, *y = (const SeenRow *)b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->blk != y->blk)
		return x->blk < y->blk ? -1 : 1;
	return x->slot < y->slot ? -1 : x->slot > y->slot ? 1 : 0;
}

void Normalise(float *v, uint32 dim) {
	double n = 0;
	for (uint32 d = 0; d < dim; d++)
		n += (double)v[d] * v[d];
	if (n > 0) {
		double inv = 1.0 / std::sqrt(n);
		for (uint32 d = 0; d < dim; d++)
			v[d] = (float)(v[d] * inv);
	}
}

} // namespace

bool ColdRebalanceNeeded(Relation index) {
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	ColdTierInfo tier;
	ReadColdTier(index, meta, meta.dimensions, &tier);
	if (tier.meta_blkno == InvalidBlockNumber || tier.lists == 0 || tier.lists >= S5V_MAX_LISTS)
		return false;
	double mean = (double)(tier.cold_rows - tier.dead_rows) / tier.lists;
	S5vListInfoData *entries;
	ReadEntries(index, meta.dimensions, tier, &entries, nullptr);
	bool needed = false;
	for (uint32 i = 0; i < tier.lists && !needed; i++)
		needed = entries[i].rows >= S5V_REBALANCE_MIN_SPLIT_ROWS &&
		         (double)entries[i].rows > S5V_REBALANCE_SPLIT_FACTOR * mean;
	pfree(entries);
	return needed;
}

int ColdRebalance(Relation index, bool wait) {
	if (wait)
		LockRelation(index, ShareUpdateExclusiveLock);
	else if (!ConditionalLockRelation(index, ShareUpdateExclusiveLock))
		return -1;
	const IndexInfoCache &info = GetIndexInfo(index);
	const uint32 dim = info.dimensions;
	const bool spherical = info.metric == Metric::Cosine || info.metric == Metric::InnerProduct;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "s5vector rebalance", ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	int changed_count = 0;

	LockColdWrite(index);
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	ColdTierInfo tier;
	ReadColdTier(index, meta, dim, &tier);
	if (tier.meta_blkno == InvalidBlockNumber || tier.lists == 0) {
		UnlockColdWrite(index);
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		UnlockRelation(index, ShareUpdateExclusiveLock);
		return 0;
	}
	const uint32 lists = tier.lists;
	S5vListInfoData *entries;
	float *centroids;
	ReadEntries(index, dim, tier, &entries, &centroids);
	const double mean_rows = (double)(tier.cold_rows - tier.dead_rows) / lists;

	// 1. Every live row once: per-list count, sum and spread; the rows of split candidates kept. (Plain palloc'd
	// arrays: an error may leave this frame at any call.)
	int64 *live = (int64 *)palloc0(sizeof(int64) * lists);
	double *sums = (double *)palloc_extended((Size)lists * dim * sizeof(double), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	double *spread = (double *)palloc0(sizeof(double) * lists);
	bool *candidate = (bool *)palloc0(sizeof(bool) * lists);
	float **cand_rows = (float **)palloc0(sizeof(float *) * lists);
	for (uint32 i = 0; i < lists; i++) {
		candidate[i] = entries[i].rows >= S5V_REBALANCE_MIN_SPLIT_ROWS &&
		               (double)entries[i].rows > S5V_REBALANCE_SPLIT_FACTOR * mean_rows;
		if (candidate[i])
			cand_rows[i] = (float *)palloc_extended(sizeof(float) * dim * entries[i].rows, MCXT_ALLOC_HUGE);
	}
	// After a step that did not finish (a crash): every row is compared with every centroid, and a heap TID held
	// twice keeps only its copy in its nearest list (the keys of every row, sorted, find them).
	const bool full = tier.rebalance_pending != 0;
	int64 nkeys = 0;
	SeenRow *keys =
	    full ? (SeenRow *)palloc_extended(sizeof(SeenRow) * Max(tier.cold_rows, (int64)1), MCXT_ALLOC_HUGE) : nullptr;
	for (uint32 i = 0; i < lists; i++) {
		const float *c = centroids + (Size)i * dim;
		WalkList(index, dim, i, entries[i].tail_head, [&](const WalkedRow &w) {
			if (full && nkeys < tier.cold_rows)
				keys[nkeys++] = SeenRow{TidKey(&w.tid), w.blk, (uint32)w.slot};
			if (candidate[i] && live[i] < entries[i].rows)
				memcpy(cand_rows[i] + (Size)live[i] * dim, w.vec, sizeof(float) * dim);
			live[i]++;
			double sq = 0;
			for (uint32 d = 0; d < dim; d++) {
				sums[(Size)i * dim + d] += w.vec[d];
				double e = (double)w.vec[d] - c[d];
				sq += e * e;
			}
			spread[i] += sq;
		});
	}

	// 2. New centroids (room for every possible split).
	uint32 max_new = Min((uint32)S5V_MAX_LISTS, lists + (uint32)S5V_REBALANCE_MAX_SPLITS);
	float *newc = (float *)palloc_extended(sizeof(float) * dim * max_new, MCXT_ALLOC_HUGE);
	memcpy(newc, centroids, sizeof(float) * dim * lists);
	bool *changed = (bool *)palloc0(sizeof(bool) * max_new);
	uint32 new_lists = lists;
	int splits = 0;
	for (uint32 i = 0; i < lists; i++) {
		if (!candidate[i] || live[i] < S5V_REBALANCE_MIN_SPLIT_ROWS || live[i] > entries[i].rows ||
		    (double)live[i] <= S5V_REBALANCE_SPLIT_FACTOR * mean_rows || new_lists >= max_new)
			continue;
		// 2-means on the list's rows: the first centroid stays list i's, the second is a new list's.
		uint32 made = 0;
		const float *rows = cand_rows[i];
		int64 n = live[i];
		float *out = newc + (Size)i * dim, *out2 = newc + (Size)new_lists * dim;
		Guarded([&]() -> Status {
			KMeansParams params;
			params.k = 2;
			params.metric = info.metric;
			params.max_iterations = 10;
			params.seed = 0x5EED0000u + i;
			params.max_bytes = (std::size_t)maintenance_work_mem * 1024;
			InterruptToken cancel;
			KMeansResult result;
			S5V_RETURN_IF_ERROR(TrainKMeans(std::span<const float>(rows, (std::size_t)n * dim), (std::size_t)n, dim,
			                                params, cancel, result));
			made = (uint32)result.k;
			if (made == 2) {
				memcpy(out, result.centroids.data(), sizeof(float) * dim);
				memcpy(out2, result.centroids.data() + dim, sizeof(float) * dim);
			}
			return Status::Ok();
		});
		if (made < 2)
			continue; // one distinct point: nothing to split
		changed[i] = true;
		changed[new_lists] = true;
		new_lists++;
		splits++;
	}
	float *m = (float *)palloc(sizeof(float) * dim);
	for (uint32 i = 0; i < lists; i++) {
		// Refresh: the rows' mean moved from the centroid by more than half the rows' spread (RMS distance).
		if (changed[i] || live[i] < S5V_MIN_ROWS_PER_LIST || info.metric == Metric::L1)
			continue;
		double drift = 0;
		for (uint32 d = 0; d < dim; d++)
			m[d] = (float)(sums[(Size)i * dim + d] / live[i]);
		if (spherical)
			Normalise(m, dim);
		for (uint32 d = 0; d < dim; d++) {
			double e = (double)m[d] - centroids[(Size)i * dim + d];
			drift += e * e;
		}
		if (drift > 0 && drift > 0.25 * (spread[i] / live[i])) {
			memcpy(newc + (Size)i * dim, m, sizeof(float) * dim);
			changed[i] = true;
		}
	}
	uint32 *changed_ids = (uint32 *)palloc(sizeof(uint32) * max_new);
	uint32 nchanged = 0;
	for (uint32 i = 0; i < new_lists; i++)
		if (changed[i])
			changed_ids[nchanged++] = i;
	changed_count = (int)nchanged;
	// The copies of heap TIDs held twice (full mode), sorted by TID, with where pass 1 saw them; dup_seen marks
	// (at a TID's first copy) that pass 2 handled one copy of it.
	int64 ndup = 0;
	if (full && nkeys > 1) {
		qsort(keys, nkeys, sizeof(SeenRow), CompareSeen);
		for (int64 k = 0; k < nkeys; k++)
			if ((k > 0 && keys[k - 1].key == keys[k].key) || (k + 1 < nkeys && keys[k + 1].key == keys[k].key))
				keys[ndup++] = keys[k];
	}
	bool *dup_seen =
	    ndup > 0 ? (bool *)palloc_extended(sizeof(bool) * ndup, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO) : nullptr;

	Removal *removals = nullptr;
	int64 nremovals = 0;
	BlockNumber head = tier.centroid_head;
	S5vListInfoData *ne = entries;
	if (changed_count > 0) {
		// 3. The new directory, in one record, after the intent (rebalance_pending) in its own.
		SetRebalancePending(index, dim, tier.meta_blkno, 1);
		ne = (S5vListInfoData *)palloc_extended(sizeof(S5vListInfoData) * new_lists, MCXT_ALLOC_HUGE);
		memcpy(ne, entries, sizeof(S5vListInfoData) * lists);
		for (uint32 i = lists; i < new_lists; i++) {
			ne[i].rows = 0;
			ne[i].min_age = PG_INT64_MAX;
			ne[i].max_age = PG_INT64_MIN;
			ne[i].tail_head = ne[i].tail_tail = ne[i].parts_head = InvalidBlockNumber;
			ne[i].tail_pages = 0;
		}
		head = WriteRun(index, dim, ne, newc, new_lists);
		InstallLists(index, dim, tier.meta_blkno, head, new_lists, 0, false, true);
	}
	if (changed_count > 0 || full) {
		// 4. Rows not in their nearest list move there (added now, removed after the wait). Only a changed
		// centroid can beat an unchanged list's own (every row was in its nearest list).
		ColdAppendTarget target{tier.meta_blkno, head, new_lists, ListsPerCentroidPage(dim), true, true};
		int64 cap = 1024;
		removals = (Removal *)palloc_extended(sizeof(Removal) * cap, MCXT_ALLOC_HUGE);
		for (uint32 i = 0; i < lists; i++) {
			WalkList(index, dim, i, ne[i].tail_head, [&](const WalkedRow &w) {
				uint32 best = i;
				float best_d = IndexDistance(info.metric, w.vec, newc + (Size)i * dim, dim);
				auto consider = [&](uint32 j) {
					float d = IndexDistance(info.metric, w.vec, newc + (Size)j * dim, dim);
					if (d < best_d || (d == best_d && j < best)) {
						best = j;
						best_d = d;
					}
				};
				if (changed[i] || full) {
					for (uint32 j = 0; j < new_lists; j++)
						consider(j);
				} else {
					for (uint32 k = 0; k < nchanged; k++)
						consider(changed_ids[k]);
				}
				// A heap TID held twice (a step that did not finish): its first copy seen is treated as any row
				// (kept in its nearest list, or moved there), every later copy is removed, so one copy stays.
				bool later_copy = false;
				if (ndup > 0) {
					// only copies pass 1 saw: a copy this pass appended (to a list walked later) is kept
					SeenRow probe{TidKey(&w.tid), w.blk, (uint32)w.slot};
					SeenRow *hit = (SeenRow *)bsearch(&probe, keys, ndup, sizeof(SeenRow), CompareSeen);
					if (hit != nullptr) {
						int64 first = hit - keys;
						while (first > 0 && keys[first - 1].key == probe.key)
							first--;
						later_copy = dup_seen[first];
						dup_seen[first] = true;
					}
				}
				if (best == i && !later_copy)
					return;
				if (!later_copy)
					ColdAppendRow(index, dim, target, best, &w.tid, w.age, w.flags & S5V_COLD_ROW_FLAGS, w.vec);
				if (nremovals == cap) {
					cap *= 2;
					removals = (Removal *)repalloc_huge(removals, sizeof(Removal) * cap);
				}
				removals[nremovals++] = Removal{w.blk, w.slot, w.tid};
			});
		}
	}
	UnlockColdWrite(index);
	if (nremovals > 0) {
		// 5. Scans that read the old places before the adds.
		WaitForScans(index);
		// 6. Remove the old copies.
		LockColdWrite(index);
		MarkRemoved(index, dim, tier.meta_blkno, removals, nremovals);
		UnlockColdWrite(index);
	}
	if (changed_count > 0 || full) {
		LockColdWrite(index);
		SetRebalancePending(index, dim, tier.meta_blkno, 0);
		UnlockColdWrite(index);
	}
	ereport(DEBUG1, (errmsg("s5vector rebalance: %d lists changed (%d split), %lld rows moved", changed_count, splits,
	                        (long long)nremovals)));
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	UnlockRelation(index, ShareUpdateExclusiveLock);
	return changed_count;
}

} // namespace s5v::pg

using namespace s5v::pg;

Datum s5vector_rebalance(PG_FUNCTION_ARGS) {
	Oid relid = PG_GETARG_OID(0);
	RefuseDuringRecovery("rebalance an index", "s5vector_rebalance");
	Relation index = OpenOwnedIndex(relid, RowExclusiveLock);
	int changed = ColdRebalance(index, true);
	relation_close(index, RowExclusiveLock);
	PG_RETURN_INT32(changed);
}

// One row per list: the staging list (list NULL) when it holds rows, then every trained list; from the centroid
// pages only (rows counts dead rows until they are compacted; local_bytes is the row pages of the list's chain).
Datum s5vector_list_stats(PG_FUNCTION_ARGS) {
	Oid relid = PG_GETARG_OID(0);
	InitMaterializedSRF(fcinfo, 0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
	Relation index = OpenOurIndex(relid, AccessShareLock);
	Oid heapid = index->rd_index->indrelid;
	if (!has_privs_of_role(GetUserId(), ROLE_PG_STAT_SCAN_TABLES) &&
	    pg_class_aclcheck(heapid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_INDEX, RelationGetRelationName(index));
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	ColdTierInfo tier;
	ReadColdTier(index, meta, meta.dimensions, &tier);
	auto age_datum = [&](int64 v) -> Datum {
		if (meta.age_kind == S5V_AGE_TIMESTAMP || meta.age_kind == S5V_AGE_DATE)
			return DirectFunctionCall1(timestamp_timestamptz, TimestampGetDatum((Timestamp)v));
		return TimestampTzGetDatum((TimestampTz)v);
	};
	auto emit = [&](bool staging, uint32 list, const S5vListInfoData &e) {
		Datum values[5];
		bool nulls[5] = {staging, false, e.min_age > e.max_age, e.min_age > e.max_age, false};
		values[0] = Int32GetDatum((int32)list);
		values[1] = Int64GetDatum(e.rows);
		values[2] = nulls[2] ? (Datum)0 : age_datum(e.min_age);
		values[3] = nulls[3] ? (Datum)0 : age_datum(e.max_age);
		values[4] = Int64GetDatum((int64)e.tail_pages * BLCKSZ);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	};
	if (tier.meta_blkno != InvalidBlockNumber) {
		if (tier.staging.rows > 0)
			emit(true, 0, tier.staging);
		if (tier.lists > 0) {
			S5vListInfoData *entries;
			ReadEntries(index, meta.dimensions, tier, &entries, nullptr);
			for (uint32 i = 0; i < tier.lists; i++)
				emit(false, i, entries[i]);
			pfree(entries);
		}
	}
	relation_close(index, AccessShareLock);
	return (Datum)0;
}
