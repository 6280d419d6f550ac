// Build and insert by age (see cold_build.h): the cold part of CREATE INDEX and the cold insert.
extern "C" {
#include "postgres.h"

#include <math.h>

#include "access/tableam.h"
#include "catalog/index.h"
#include "commands/progress.h"
#include "common/pg_prng.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

#include "pg/cold_build.h"
#include "pg/cold_store.h"
#include "pg/cold_upload.h"
#include "pg/guard.h"
#include "pg/parallel_build.h"

#include "core/kmeans.h"

namespace s5v::pg {

// CREATE INDEX trains in two steps: k-means (10 Lloyd iterations) on up to S5V_TRAIN_ROWS_PER_LIST sampled rows a
// list, then S5V_REFINE_ITERATIONS more iterations from those centroids on up to S5V_REFINE_ROWS_PER_LIST rows a
// list. 64 rows a list alone gave lists that needed more probes than pgvector's (which trains on max(50 * lists,
// 10000) rows) for the same recall; 10 iterations on 256 rows a list closed that gap but took 3.6x the training
// time (Fashion-MNIST 25600 x 784, 100 lists: 1.83 s against 0.51 s); the refinement on the larger sample gets
// nearly the same objective over all rows for 1.09 s (docs/benchmarks.md, "IVF").
constexpr int64 S5V_TRAIN_ROWS_PER_LIST = 64;
constexpr int64 S5V_REFINE_ROWS_PER_LIST = 256;
constexpr int S5V_TRAIN_ITERATIONS = 10;
constexpr int S5V_REFINE_ITERATIONS = 2;

void ColdPolicyFor(const Interval &hot_window, bool infinite, uint8 age_kind, ColdPolicy *out) {
	memset(out, 0, sizeof(*out));
	if (infinite)
		return;
	bool zero = hot_window.month == 0 && hot_window.day == 0 && hot_window.time == 0;
	if (zero) {
		out->enabled = true;
		out->all_cold = true;
		return;
	}
	// Without an age column a row's age is when it entered the index: inside a window that is not 0 when it enters
	// (build, insert), older than it once the window has passed (migration).
	out->enabled = true;
	TimestampTz now = GetCurrentTimestamp();
	Interval window = hot_window;
	if (age_kind == S5V_AGE_TIMESTAMPTZ || age_kind == S5V_AGE_NONE) {
		out->cutoff = DatumGetTimestampTz(
		    DirectFunctionCall2(timestamptz_mi_interval, TimestampTzGetDatum(now), IntervalPGetDatum(&window)));
	} else {
		// timestamp and date ages are local wall-clock times (dates at midnight): compare in local time.
		Timestamp local = DatumGetTimestamp(DirectFunctionCall1(timestamptz_timestamp, TimestampTzGetDatum(now)));
		out->cutoff = DatumGetTimestamp(
		    DirectFunctionCall2(timestamp_mi_interval, TimestampGetDatum(local), IntervalPGetDatum(&window)));
	}
}

void ColdPolicyOfIndex(Relation index, uint8 age_kind, ColdPolicy *out) {
	Interval window;
	bool infinite;
	OptionHotWindow(index, &window, &infinite);
	ColdPolicyFor(window, infinite, age_kind, out);
}

uint32 AutoLists(int64 n) {
	double lists = n <= 1000000 ? (double)n / 1000.0 : sqrt((double)n);
	return (uint32)Max(1.0, Min(lists, (double)S5V_MAX_LISTS));
}

int64 TrainRowsFor(int lists_option) {
	if (lists_option <= 0)
		return S5V_AUTO_TRAIN_ROWS;
	return Max((int64)lists_option * S5V_MIN_ROWS_PER_LIST, (int64)S5V_MIN_TRAIN_ROWS);
}

namespace {

// Train `lists` lists on n rows (n * dim floats), `iterations` Lloyd iterations, from `initial` when given. Centroids
// (lists * dim) and each row's list (n) go into palloc'd arrays the caller passes; returns the lists made (fewer when
// the rows have fewer distinct points). Plain frame: the C++ work is inside Guarded.
uint32 TrainLists(const IndexInfoCache &info, const float *rows, int64 n, uint32 lists, float *centroids_out,
                  uint32 *assign_out, Size memory_limit, int iterations = 10, const float *initial = nullptr) {
	uint32 made = 0;
	uint32 dim = info.dimensions;
	Guarded([&]() -> Status {
		KMeansParams params;
		params.k = lists;
		params.metric = info.metric;
		params.max_iterations = iterations;
		// Refining: start from `initial` (lists * dim floats; it may be centroids_out, which is written only after
		// training).
		if (initial != nullptr)
			params.initial_centroids = std::span<const float>(initial, (std::size_t)lists * dim);
		params.seed = UINT64CONST(0x5355564b4d45414e);
		params.max_bytes = memory_limit;
		InterruptToken cancel;
		KMeansResult result;
		S5V_RETURN_IF_ERROR(TrainKMeans(std::span<const float>(rows, (std::size_t)n * dim), (std::size_t)n, dim, params,
		                                cancel, result));
		made = (uint32)result.k;
		memcpy(centroids_out, result.centroids.data(), sizeof(float) * dim * made);
		if (assign_out != nullptr)
			memcpy(assign_out, result.assignments.data(), sizeof(uint32) * n);
		return Status::Ok();
	});
	return made;
}

// The nearest of `lists` centroids to vec.
uint32 NearestOf(const IndexInfoCache &info, const float *centroids, uint32 lists, const float *vec) {
	uint32 list = 0;
	uint32 dim = info.dimensions;
	Guarded([&]() -> Status {
		InterruptToken cancel;
		return AssignToNearest(std::span<const float>(vec, dim), 1, dim,
		                       std::span<const float>(centroids, (std::size_t)lists * dim), lists, info.metric, cancel,
		                       std::span<std::uint32_t>(&list, 1), std::span<float>());
	});
	return list;
}

} // namespace

struct ColdBuildState {
	IndexInfoCache info;
	ColdPolicy policy;
	int lists_option;
	Size memory_limit;
	int64 count;       // cold rows seen by pass 1 (vector not NULL; prepared or not)
	int64 seen;        // the same count in pass 2
	float *sample_vec; // pass 1's prepared vector of a row the sample takes
	// Reservoir sample of pass 1's cold rows (Algorithm R).
	int64 sample_cap;
	int64 sample_n;
	int64 sample_alloc;
	float *sample;
	pg_prng_state prng;
	// Pass 2.
	Relation index;
	ColdAppendTarget target;
	float *centroids;
	uint32 lists;
	float *vec;
	MemoryContext tmpcxt;
	double written;
	ColdUploadState *upload; // S5 configured: the trained lists' rows go up as segments (cold_upload.h)
	// Pass 2 into trained local lists: rows wait here and are appended list by list (FlushColdBuildRows), so that a
	// list's row pages are consecutive blocks, and neighbouring buffers for the scans that follow (docs/benchmarks.md,
	// "IVF", 2026-12-02). At most half of memory_limit (the sample's room, freed by then); a flush empties it.
	int64 pend_n;
	int64 pend_cap;
	uint32 *pend_list;
	ItemPointerData *pend_tid;
	int64 *pend_age;
	uint8 *pend_flags;
	float *pend_vecs;
};

ColdBuildState *ColdBuildBegin(Relation index, const IndexInfoCache &info, int lists_option, const Interval &hot_window,
                               bool infinite, Size memory_limit) {
	ColdPolicy policy;
	ColdPolicyFor(hot_window, infinite, info.age_kind, &policy);
	// A build sees no old row without an age column (unless the window is 0): no cold part.
	if (!policy.enabled || (info.age_kind == S5V_AGE_NONE && !policy.all_cold))
		return nullptr;
	ColdBuildState *cb = (ColdBuildState *)palloc0(sizeof(ColdBuildState));
	cb->info = info;
	cb->policy = policy;
	cb->lists_option = lists_option;
	cb->memory_limit = memory_limit;
	// Half of maintenance_work_mem for the sample, at least 256 rows, at most what training takes: the refinement's
	// S5V_REFINE_ROWS_PER_LIST rows a list (at least 4096) of the given lists, or of the largest count with lists = 0
	// (chosen from the count, known only after this pass). A row the reservoir does not take is not detoasted.
	int64 cap = (int64)(memory_limit / 2 / (sizeof(float) * info.dimensions));
	int64 wanted = lists_option > 0 ? Max((int64)lists_option * S5V_REFINE_ROWS_PER_LIST, (int64)4096)
	                                : (int64)256 * S5V_MAX_LISTS;
	cb->sample_cap = Max((int64)256, Min(cap, wanted));
	cb->sample_alloc = Min(cb->sample_cap, (int64)1024);
	cb->sample = (float *)palloc_extended(sizeof(float) * info.dimensions * cb->sample_alloc, MCXT_ALLOC_HUGE);
	cb->sample_vec = (float *)palloc(sizeof(float) * info.dimensions);
	pg_prng_seed(&cb->prng, UINT64CONST(0x53355653414d504c));
	cb->index = index;
	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, S5V_PHASE_COLD_SAMPLE);
	return cb;
}

bool ColdBuildWantsRow(const ColdBuildState *cb, int64 age, uint8 element_flags) {
	return cb != nullptr && ColdPolicyIsCold(cb->policy, age, element_flags);
}

void ColdBuildOffer(ColdBuildState *cb, Datum value) {
	uint32 dim = cb->info.dimensions;
	cb->count++;
	int64 slot;
	bool grow = cb->sample_n < cb->sample_cap;
	if (grow) {
		// The array starts small (most builds have few cold rows or none) and doubles up to the cap.
		if (cb->sample_n == cb->sample_alloc) {
			cb->sample_alloc = Min(cb->sample_cap, cb->sample_alloc * 2);
			cb->sample = (float *)repalloc_huge(cb->sample, sizeof(float) * dim * cb->sample_alloc);
		}
		slot = cb->sample_n;
	} else {
		slot = (int64)pg_prng_uint64_range(&cb->prng, 0, (uint64)cb->count - 1);
		if (slot >= cb->sample_cap)
			return; // not sampled: its vector is not read now (pass 2 reads and checks it)
	}
	float *dest = cb->sample + (Size)slot * dim;
	bool prepared = PrepareVector(cb->info, value, cb->sample_vec);
	CheckBuildVector(cb->info, value, cb->sample_vec, prepared);
	if (!prepared)
		return; // not indexed (a zero vector under cosine): pass 2 skips it too
	memcpy(dest, cb->sample_vec, sizeof(float) * dim);
	if (grow)
		cb->sample_n++;
}

namespace {

// Append the waiting rows of pass 2 to their lists, list by list (each list's rows in the order the table scan
// gave them): consecutive appends to one list take consecutive new pages.
void FlushColdBuildRows(ColdBuildState *cb) {
	if (cb->pend_n == 0)
		return;
	uint32 dim = cb->info.dimensions;
	int64 *start = (int64 *)palloc0(sizeof(int64) * (cb->lists + 1));
	for (int64 i = 0; i < cb->pend_n; i++)
		start[cb->pend_list[i] + 1]++;
	for (uint32 l = 0; l < cb->lists; l++)
		start[l + 1] += start[l];
	int64 *order = (int64 *)palloc_extended(sizeof(int64) * cb->pend_n, MCXT_ALLOC_HUGE);
	for (int64 i = 0; i < cb->pend_n; i++)
		order[start[cb->pend_list[i]]++] = i;
	// The appends in a context of their own, reset after each list (as the per-row path resets tmpcxt). After the
	// counting sort start[l] is the end of list l's run in order[] (and the start of list l + 1's).
	MemoryContext appendcxt =
	    AllocSetContextCreate(CurrentMemoryContext, "s5vector cold build appends", ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(appendcxt);
	ColdRowsIn in{cb->pend_tid, cb->pend_age, cb->pend_flags, cb->pend_vecs, nullptr};
	for (uint32 l = 0; l < cb->lists; l++) {
		int64 from = l == 0 ? 0 : start[l - 1];
		if (start[l] == from)
			continue;
		in.order = order + from;
		ColdAppendRows(cb->index, dim, cb->target, l, start[l] - from, in);
		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(appendcxt);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(appendcxt);
	pfree(order);
	pfree(start);
	cb->pend_n = 0;
}

void ColdBuildCallback(Relation index, ItemPointer tid, Datum *values, bool *isnull, bool tupleIsAlive, void *state) {
	ColdBuildState *cb = (ColdBuildState *)state;
	if (isnull[0])
		return;
	MemoryContext old = MemoryContextSwitchTo(cb->tmpcxt);
	uint8 flags = 0;
	int64 age = RowAge(cb->info, values, isnull, &flags);
	if (ColdPolicyIsCold(cb->policy, age, flags)) {
		cb->seen++;
		// Pass 1 read only the sampled rows' vectors: every cold row is checked here (NaN, infinity: 22000).
		bool prepared = PrepareVector(cb->info, values[0], cb->vec);
		CheckBuildVector(cb->info, values[0], cb->vec, prepared);
		if (prepared) {
			uint32 list = cb->lists > 0 ? NearestOf(cb->info, cb->centroids, cb->lists, cb->vec) : S5V_STAGING_LIST;
			uint8 row_flags = (flags & S5V_ELEMENT_AGE_NULL) ? S5V_COLD_ROW_AGE_NULL : 0;
			if (cb->upload != nullptr && list != S5V_STAGING_LIST) {
				ColdUploadAdd(cb->upload, list, tid, age, row_flags, cb->vec);
			} else if (cb->pend_cap > 0 && list != S5V_STAGING_LIST) {
				MemoryContext keep = MemoryContextSwitchTo(old);
				if (cb->pend_n == cb->pend_cap)
					FlushColdBuildRows(cb);
				MemoryContextSwitchTo(keep);
				int64 i = cb->pend_n++;
				cb->pend_list[i] = list;
				cb->pend_tid[i] = *tid;
				cb->pend_age[i] = age;
				cb->pend_flags[i] = row_flags;
				memcpy(cb->pend_vecs + (Size)i * cb->info.dimensions, cb->vec, sizeof(float) * cb->info.dimensions);
			} else {
				ColdAppendRow(cb->index, cb->info.dimensions, cb->target, list, tid, age, row_flags, cb->vec);
			}
			cb->written++;
			if ((uint64)cb->written % 1000 == 0)
				pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64)cb->written);
		}
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(cb->tmpcxt);
}

} // namespace

double ColdBuildFinish(ColdBuildState *cb, Relation heap, Relation index, IndexInfo *indexInfo) {
	if (cb == nullptr || cb->count == 0)
		return 0;
	uint32 dim = cb->info.dimensions;
	uint32 lists = cb->lists_option > 0 ? (uint32)cb->lists_option : AutoLists(cb->count);
	int64 train_rows = TrainRowsFor(cb->lists_option);
	BlockNumber meta_blk = EnsureColdTier(index, dim, train_rows, false);
	cb->target.meta_blkno = meta_blk;
	cb->target.centroid_head = InvalidBlockNumber;
	cb->target.count_in_meta = true;
	cb->target.wal = false;
	cb->target.reuse_room = false; // lists written from scratch: no holes
	cb->lists = 0;
	if (cb->count >= train_rows && cb->count >= (int64)lists * S5V_MIN_ROWS_PER_LIST && cb->sample_n > 0) {
		pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, S5V_PHASE_COLD_TRAIN);
		// Train on a uniform choice among the sample (a partial shuffle): its first n_train rows are a uniform choice
		// too.
		int64 n = Min(cb->sample_n, Max((int64)lists * S5V_REFINE_ROWS_PER_LIST, (int64)4096));
		int64 n_train = Min(n, Max((int64)lists * S5V_TRAIN_ROWS_PER_LIST, (int64)4096));
		for (int64 i = 0; i < n && n < cb->sample_n; i++) {
			int64 j = (int64)pg_prng_uint64_range(&cb->prng, (uint64)i, (uint64)cb->sample_n - 1);
			if (j != i)
				for (uint32 d = 0; d < dim; d++) {
					float t = cb->sample[(Size)i * dim + d];
					cb->sample[(Size)i * dim + d] = cb->sample[(Size)j * dim + d];
					cb->sample[(Size)j * dim + d] = t;
				}
		}
		cb->centroids = (float *)palloc_extended(sizeof(float) * dim * lists, MCXT_ALLOC_HUGE);
		cb->lists = TrainLists(cb->info, cb->sample, n_train, lists, cb->centroids, nullptr, cb->memory_limit,
		                       S5V_TRAIN_ITERATIONS, nullptr);
		if (n > n_train && cb->lists == lists)
			cb->lists = TrainLists(cb->info, cb->sample, n, lists, cb->centroids, nullptr, cb->memory_limit,
			                       S5V_REFINE_ITERATIONS, cb->centroids);
		BlockNumber head = WriteCentroidPages(index, dim, cb->centroids, cb->lists, false);
		// The quantizer of the rows' codes, on the same sample (cold_codes; rows outside its range clamp, and each
		// row keeps its own error, so the scan's bounds stay true).
		BlockNumber quant_head;
		cb->target.coder = TrainColdQuantizer(index, cb->info, cb->sample, n, false, &quant_head);
		InstallLists(index, dim, meta_blk, head, cb->lists, 0, false, false, quant_head);
		cb->target.centroid_head = head;
		cb->target.lists = cb->lists;
		cb->target.lists_per_page = ListsPerCentroidPage(dim);
	}
	pfree(cb->sample);
	cb->sample = nullptr;
	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, S5V_PHASE_COLD_ASSIGN);
	cb->vec = (float *)palloc(sizeof(float) * dim);
	cb->tmpcxt = AllocSetContextCreate(CurrentMemoryContext, "s5vector cold build", ALLOCSET_DEFAULT_SIZES);
	cb->upload = ColdUploadBegin(index, cb->info, cb->lists, cb->memory_limit);
	if (cb->upload == nullptr && cb->lists > 0) {
		Size row = sizeof(uint32) + sizeof(ItemPointerData) + sizeof(int64) + 1 + sizeof(float) * dim;
		cb->pend_cap = Min((int64)(cb->memory_limit / 2 / row), cb->count);
		if (cb->pend_cap < 64)
			cb->pend_cap = 0; // too little memory to gain anything: append as the scan goes
		if (cb->pend_cap > 0) {
			cb->pend_list = (uint32 *)palloc_extended(sizeof(uint32) * cb->pend_cap, MCXT_ALLOC_HUGE);
			cb->pend_tid = (ItemPointerData *)palloc_extended(sizeof(ItemPointerData) * cb->pend_cap, MCXT_ALLOC_HUGE);
			cb->pend_age = (int64 *)palloc_extended(sizeof(int64) * cb->pend_cap, MCXT_ALLOC_HUGE);
			cb->pend_flags = (uint8 *)palloc_extended(cb->pend_cap, MCXT_ALLOC_HUGE);
			cb->pend_vecs = (float *)palloc_extended(sizeof(float) * dim * cb->pend_cap, MCXT_ALLOC_HUGE);
		}
	}
	table_index_build_scan(heap, index, indexInfo, true, true, ColdBuildCallback, (void *)cb, NULL);
	FlushColdBuildRows(cb);
	if (cb->pend_cap > 0) {
		pfree(cb->pend_list);
		pfree(cb->pend_tid);
		pfree(cb->pend_age);
		pfree(cb->pend_flags);
		pfree(cb->pend_vecs);
		cb->pend_cap = 0;
	}
	MemoryContextDelete(cb->tmpcxt);
	if (cb->upload != nullptr)
		(void)ColdUploadFinish(cb->upload, index, cb->target);
	if (cb->seen != cb->count)
		elog(ERROR, "s5vector: the second table scan found %lld cold rows, the first %lld", (long long)cb->seen,
		     (long long)cb->count);
	return cb->written;
}

// ---- insert -------------------------------------------------------------------------------------------------------

namespace {

// Train the cold tier from its staging list: k-means on the staging rows, new centroid pages, every staging row
// appended to its list (these lists are not yet referenced), then one record points the cold metapage at them and
// empties staging. A crash before that record leaves unreferenced pages and the staging list as it was.
void TrainFromStaging(Relation index, const IndexInfoCache &info, const ColdTierInfo &tier, int lists_option) {
	uint32 dim = info.dimensions;
	ItemPointerData *tids;
	int64 *ages;
	uint8 *flags;
	float *vecs;
	int64 n = ColdReadStaging(index, dim, tier, &tids, &ages, &flags, &vecs);
	uint32 lists = lists_option > 0 ? (uint32)lists_option : AutoLists(n);
	if (n < TrainRowsFor(lists_option) || n < (int64)lists * S5V_MIN_ROWS_PER_LIST)
		return;
	float *centroids = (float *)palloc_extended(sizeof(float) * dim * lists, MCXT_ALLOC_HUGE);
	uint32 *assign = (uint32 *)palloc_extended(sizeof(uint32) * n, MCXT_ALLOC_HUGE);
	uint32 made = TrainLists(info, vecs, n, lists, centroids, assign, (Size)maintenance_work_mem * 1024L);
	BlockNumber head = WriteCentroidPages(index, dim, centroids, made, true);
	ColdAppendTarget target{tier.meta_blkno, head, made, ListsPerCentroidPage(dim), false, true, false}; // new lists
	BlockNumber quant_head;
	target.coder = TrainColdQuantizer(index, info, vecs, n, true, &quant_head);
	// List by list (each list's rows in staging order), so that a list's new row pages are neighbours, as a build
	// writes them (FlushColdBuildRows).
	int64 *start = (int64 *)palloc0(sizeof(int64) * (made + 1));
	for (int64 i = 0; i < n; i++) {
		if (assign[i] >= made)
			elog(ERROR, "s5vector: training assigned a row to list %u of %u", assign[i], made);
		start[assign[i] + 1]++;
	}
	for (uint32 l = 0; l < made; l++)
		start[l + 1] += start[l];
	int64 *order = (int64 *)palloc_extended(sizeof(int64) * Max(n, (int64)1), MCXT_ALLOC_HUGE);
	for (int64 i = 0; i < n; i++)
		order[start[assign[i]]++] = i;
	// After the counting sort start[l] is the end of list l's run in order[] (and the start of list l + 1's).
	ColdRowsIn in{tids, ages, flags, vecs, nullptr};
	for (uint32 l = 0; l < made; l++) {
		int64 from = l == 0 ? 0 : start[l - 1];
		if (start[l] == from)
			continue;
		CHECK_FOR_INTERRUPTS();
		in.order = order + from;
		ColdAppendRows(index, dim, target, l, start[l] - from, in);
	}
	pfree(order);
	pfree(start);
	// Dead staging rows are not carried over: the tier's count drops by them.
	InstallLists(index, dim, tier.meta_blkno, head, made, n - tier.staging.rows, true, true, quant_head);
}

} // namespace

bool ColdInsertIfOld(Relation index, const IndexInfoCache &info, ItemPointer heap_tid, int64 age, uint8 element_flags,
                     const float *vec) {
	S5vMetaPageData meta;
	BlockNumber nblocks;
	ReadMetaPageRaw(index, &meta, &nblocks);
	ColdPolicy policy;
	ColdPolicyOfIndex(index, info.age_kind, &policy);
	if (!ColdPolicyIsCold(policy, age, element_flags))
		return false;
	LockColdWrite(index);
	ColdAddRowLocked(index, info, meta, heap_tid, age, element_flags, vec, false);
	UnlockColdWrite(index);
	return true;
}

namespace {

// Is `tid` already in the chain from `head` (list `list`)? For migration's idempotency.
bool ChainHasTid(Relation index, uint32 dim, BlockNumber head, uint32 list, const ItemPointerData *tid) {
	bool found = false;
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	BlockNumber walked = 0;
	for (BlockNumber blk = head; blk != InvalidBlockNumber && !found;) {
		CheckChainStep(index, blk, nblocks, &walked, "list chain leaves the index or loops");
		Buffer buf = ReadBuffer(index, blk);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		S5vRowsLayout l;
		S5vColdRows rows = GetColdRows(index, BufferGetPage(buf), blk, dim, &l);
		(void)list;
		ItemPointer tids = RowsTids(rows, l);
		uint8 *flags = RowsFlags(rows, l);
		for (uint16 r = 0; r < rows->count && !found; r++)
			found = !(flags[r] & S5V_COLD_ROW_DEAD) && ItemPointerEquals(&tids[r], (ItemPointer)tid);
		BlockNumber next = S5vPageGetOpaque(BufferGetPage(buf))->nextblkno;
		UnlockReleaseBuffer(buf);
		blk = next;
	}
	return found;
}

} // namespace

bool ColdAddRowLocked(Relation index, const IndexInfoCache &info, S5vMetaPageData &meta,
                      const ItemPointerData *heap_tid, int64 age, uint8 element_flags, const float *vec,
                      bool skip_if_present) {
	uint32 dim = info.dimensions;
	meta.cold_metapage = EnsureColdTier(index, dim, TrainRowsFor(meta.lists), true);
	ColdTierInfo tier;
	ReadColdTier(index, meta, dim, &tier);
	uint8 row_flags = (element_flags & S5V_ELEMENT_AGE_NULL) ? S5V_COLD_ROW_AGE_NULL : 0;
	ColdAppendTarget target{tier.meta_blkno, tier.centroid_head, tier.lists, tier.lists_per_page, true, true};
	if (tier.lists == 0) {
		if (skip_if_present && ChainHasTid(index, dim, tier.staging.tail_head, S5V_STAGING_LIST, heap_tid))
			return false;
		ColdAppendRow(index, dim, target, S5V_STAGING_LIST, heap_tid, age, row_flags, vec);
		if (tier.staging.rows + 1 >= tier.train_rows) {
			ReadColdTier(index, meta, dim, &tier);
			TrainFromStaging(index, info, tier, meta.lists);
		}
	} else {
		uint32 list = ColdNearestList(index, info, tier, vec);
		if (skip_if_present) {
			BlockNumber *heads;
			uint32 *lists;
			(void)ColdChainHeads(index, dim, tier, &heads, &lists);
			if (ChainHasTid(index, dim, heads[1 + list], list, heap_tid))
				return false;
		}
		ColdAppendRow(index, dim, target, list, heap_tid, age, row_flags, vec);
	}
	return true;
}

} // namespace s5v::pg
