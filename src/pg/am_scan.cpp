// Index scans: an orchestration of candidate streams (core/merge.h) giving heap TIDs in distance order — the
// hot graph first, widening when the executor asks for more up to max_scan_tuples, then on small indexes an
// exact pass — with the age predicate (second key column) applied inside the index. A NULL query (or a zero
// query under cosine) has no order: every live row is returned, unordered. Every scan holds the scan
// interlock (pg/locks.h) from beginscan to endscan.
extern "C" {
#include "postgres.h"

#include "access/relscan.h"
#include "access/stratnum.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
}

#include "pg/am.h"
#include "pg/cold_store.h"
#include "pg/guard.h"
#include "pg/gucs.h"
#include "pg/index.h"
#include "pg/locks.h"
#include "pg/page_iter.h"
#include "pg/page_store.h"

#include "core/inverted_lists.h"
#include "core/merge.h"

#include <algorithm>
#include <memory>
#include <vector>

namespace s5v::pg {

namespace {

uint64 TidKey(const ItemPointerData &t) {
	return ((uint64)ItemPointerGetBlockNumber(&t) << 16) | ItemPointerGetOffsetNumber(&t);
}

void TidFromKey(RowId key, ItemPointerData *out) {
	ItemPointerSet(out, (BlockNumber)(key >> 16), (OffsetNumber)(key & 0xFFFF));
}

// Graph nodes to rows: the heap TIDs the page store saw while computing distances.
class PageNodeRows final : public NodeRows {
public:
	explicit PageNodeRows(const PageGraphStore &store) : store_(store) {}
	bool RowOf(hnsw::NodeId node, RowId &out) const override {
		ItemPointerData tid;
		if (!store_.HeapTid(node, tid))
			return false;
		out = TidKey(tid);
		return true;
	}

private:
	const PageGraphStore &store_;
};

// C++ state of one scan, owned by the scan's memory context (deleted by its reset callback). The scan is a
// merge of candidate streams: the hot graph first; the exact pass joins when the graph has nothing more (the
// cold tier's streams will join here too).
struct ScanObjects {
	PageGraphStore store;
	InterruptToken cancel;
	hnsw::Searcher searcher;
	PageNodeRows rows;
	GraphStream hot;
	MergedSearch merge;
	std::unique_ptr<SortedRowsStream> exact;
	// Cold tier (cold_store.h): the trained lists and the staging list, each an IVF stream (lists before streams,
	// so the streams go first).
	std::unique_ptr<PageColdLists> cold_lists[2];
	std::unique_ptr<ivf::IvfStream> cold[2];

	// The merge's order from s5vector.iterative_scan: relaxed_order merges as rows come; off and strict_order
	// never go back in distance.
	ScanObjects(Relation index, const IndexInfoCache &info)
	    : store(index, info), searcher(store, info.dimensions, cancel), rows(store), hot(searcher, rows),
	      merge(s5v_iterative_scan == S5V_ITERATIVE_RELAXED ? MergeOrder::Relaxed : MergeOrder::Strict) {}
};

struct ScanOpaqueData {
	IndexInfoCache info;
	MemoryContext cxt;
	ScanObjects *objects;
	AgeFilter filter;
	float *query;
	bool interlocked; // holds the scan interlock (locks.h)
	bool started;
	bool done;
	bool sweep;                    // no usable query: return every matching row
	S5vPageIter sweep_it;          // the sweep's pass over the hot pages (holds no page between calls)
	struct ScoredTid *page_items;  // one page's live elements (sweep, exact pass)
	BufferAccessStrategy strategy; // ring buffer for reads of every page (sweep, exact pass)
	BlockNumber heap_nblocks;      // cached size of the table for CheckHeapTid (0 = not read yet)
	int sweep_count;
	int sweep_pos;
	// Exact pass: once the graph search has nothing more, every live matching element not yet returned,
	// nearest first (the graph may not reach every element, e.g. under inner product or with duplicates);
	// only on indexes small enough to read within max_scan_tuples (ExactPassAllowed).
	bool exhaustive;
	struct ScoredTid *rest;
	int64 rest_count;
	// Cold tier: copies of list rows live in coldcxt (reset by rescans); the sweep's cold rows.
	MemoryContext coldcxt;
	bool cold_swept;
	ColdRow *cold_rows;
	int64 cold_count;
	int64 cold_pos;
};
typedef ScanOpaqueData *ScanOpaque;

struct ScoredTid {
	float distance;
	ItemPointerData tid;
};

// The ring buffer for reads of every page (the NULL-query sweep, the exact pass), so that a sweep does not evict
// the buffer pool; made on first use.
BufferAccessStrategy ScanStrategy(ScanOpaque so) {
	if (so->strategy == nullptr) {
		MemoryContext old = MemoryContextSwitchTo(so->cxt);
		so->strategy = GetAccessStrategy(BAS_BULKREAD);
		MemoryContextSwitchTo(old);
	}
	return so->strategy;
}

// Starts a pass of the sweep or the exact pass over the hot pages through the page iterator: new pages and cold
// pages (read through their lists) are skipped, a page that is not ours or of an unknown type (a second
// metapage, a type no build writes) is index_corrupted, not a page to pass over silently.
void BeginHotPass(IndexScanDesc scan, ScanOpaque so, S5vPageIter *it, int flags) {
	PageIterBegin(it, scan->indexRelation, S5V_PAGE_MASK(S5V_PAGE_HOT), BUFFER_LOCK_SHARE, ScanStrategy(so), flags);
}

// The live elements of the iterator's current (hot, checked) page that match the age filter go into `out` (room
// for MaxOffsetNumber); with `score`, each with its distance to the query. Every heap TID is checked against the
// table. Returns how many (plain code: may ereport).
int PageLiveElements(IndexScanDesc scan, ScanOpaque so, const S5vPageIter *it, bool score, ScoredTid *out) {
	Relation index = scan->indexRelation;
	Page page = it->page;
	BlockNumber blk = it->blkno;
	int n = 0;
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++) {
		S5vElementTuple etup = GetElement(index, page, blk, off, so->info.dimensions);
		if (etup == nullptr || (etup->flags & S5V_ELEMENT_DELETED) || !so->filter.Matches(etup->age, etup->flags))
			continue;
		// The TID goes to the executor: it must name a possible row of the table (a block past its end would
		// make the heap fetch extend the table).
		CheckHeapTid(index, &etup->heaptid, &so->heap_nblocks);
		out[n].distance = score ? s5v::IndexDistance(so->info.metric, so->query, etup->x, so->info.dimensions) : 0.0f;
		out[n].tid = etup->heaptid;
		n++;
	}
	return n;
}

// The exact pass reads the whole index, so it is allowed only when that stays within the scan's budget:
// at most s5vector.max_scan_tuples elements (the metapage's counter) on at most as many pages. On larger
// indexes a scan stops where the graph stops (pgvector's max_scan_tuples means "stop"), and rows the graph
// does not reach are not returned (plain code: may ereport).
bool ExactPassAllowed(Relation index) {
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	ColdTierInfo tier; // cold tier hook: its rows count too
	ReadColdTier(index, meta, GetIndexInfo(index).dimensions, &tier);
	return meta.hot_elements + tier.cold_rows <= (int64)s5v_max_scan_tuples &&
	       (int64)nblocks - 1 <= (int64)s5v_max_scan_tuples;
}

// Every live element matching the age filter, with its distance to the query (plain code: may ereport).
void CollectAll(IndexScanDesc scan, ScanOpaque so, ScoredTid **out, int64 *count) {
	int64 cap = 1024, n = 0;
	ScoredTid *items = (ScoredTid *)MemoryContextAllocHuge(so->cxt, sizeof(ScoredTid) * cap);
	S5vPageIter it;
	BeginHotPass(scan, so, &it, 0);
	while (PageIterNext(&it)) {
		int got = PageLiveElements(scan, so, &it, true, so->page_items);
		if (n + got > cap) {
			while (n + got > cap)
				cap *= 2;
			items = (ScoredTid *)repalloc_huge(items, sizeof(ScoredTid) * cap);
		}
		memcpy(items + n, so->page_items, sizeof(ScoredTid) * got);
		n += got;
	}
	PageIterEnd(&it);
	// Cold tier hook: every cold row, by following the lists.
	ColdRow *cold;
	int64 ncold = ColdCollectRows(scan->indexRelation, so->info, so->filter, so->query, &cold);
	if (ncold > 0) {
		items = (ScoredTid *)repalloc_huge(items, sizeof(ScoredTid) * (n + ncold));
		for (int64 i = 0; i < ncold; i++)
			items[n++] = ScoredTid{cold[i].distance, cold[i].tid};
	}
	pfree(cold);
	*out = items;
	*count = n;
}

void DeleteScanObjects(void *arg) {
	ScanOpaque so = (ScanOpaque)arg;
	delete so->objects;
	so->objects = nullptr;
}

// Next page of the sweep: its live, matching heap TIDs (copied out: no page stays pinned between calls).
// Returns false at the end of the index. The sweep goes on over pages added while it runs
// (S5V_PAGE_ITER_GROW), as it did when it re-read the size on each call.
bool SweepNextPage(IndexScanDesc scan, ScanOpaque so) {
	so->sweep_count = 0;
	so->sweep_pos = 0;
	while (PageIterNext(&so->sweep_it)) {
		so->sweep_count = PageLiveElements(scan, so, &so->sweep_it, false, so->page_items);
		PageIterRelease(&so->sweep_it);
		if (so->sweep_count > 0)
			return true;
	}
	PageIterEnd(&so->sweep_it);
	return false;
}

// Turn the scan keys on the age column into one range.
void BuildAgeFilter(ScanOpaque so, ScanKey keys, int nkeys) {
	so->filter = AgeFilter();
	for (int i = 0; i < nkeys; i++) {
		ScanKey key = &keys[i];
		if (key->sk_attno != 2)
			continue;
		so->filter.active = true;
		if (key->sk_flags & SK_ISNULL) {
			so->filter.impossible = true;
			continue;
		}
		int64 v = AgeFromDatum(so->info.age_kind, key->sk_argument);
		switch (key->sk_strategy) {
		case BTLessStrategyNumber:
			if (v < so->filter.hi || (v == so->filter.hi && so->filter.hi_inclusive)) {
				so->filter.hi = v;
				so->filter.hi_inclusive = false;
			}
			break;
		case BTLessEqualStrategyNumber:
			if (v < so->filter.hi) {
				so->filter.hi = v;
				so->filter.hi_inclusive = true;
			}
			break;
		case BTEqualStrategyNumber:
			if (v < so->filter.hi) {
				so->filter.hi = v;
				so->filter.hi_inclusive = true;
			}
			if (v > so->filter.lo) {
				so->filter.lo = v;
				so->filter.lo_inclusive = true;
			}
			break;
		case BTGreaterEqualStrategyNumber:
			if (v > so->filter.lo) {
				so->filter.lo = v;
				so->filter.lo_inclusive = true;
			}
			break;
		case BTGreaterStrategyNumber:
			if (v > so->filter.lo || (v == so->filter.lo && so->filter.lo_inclusive)) {
				so->filter.lo = v;
				so->filter.lo_inclusive = false;
			}
			break;
		default:
			elog(ERROR, "s5vector: unexpected strategy %d on the age column", key->sk_strategy);
		}
	}
	if (so->filter.lo > so->filter.hi)
		so->filter.impossible = true;
}

// Cold tier hook: the trained lists (the s5vector.probes nearest, widening up to s5vector.max_probes) and the
// staging list (read whole) join the merge as IVF streams, unless they hold nothing the age filter can match.
Status StartColdStreams(ScanObjects *o, Relation index, const IndexInfoCache &info, const AgeFilter &filter,
                        MemoryContext cxt, const float *query) {
	for (int staging = 0; staging < 2; staging++) {
		o->cold_lists[staging] = std::make_unique<PageColdLists>(index, info, filter, staging == 1, cxt);
		bool has_rows = false;
		S5V_RETURN_IF_ERROR(o->cold_lists[staging]->Open(has_rows));
		if (!has_rows)
			continue;
		o->cold[staging] = std::make_unique<ivf::IvfStream>(*o->cold_lists[staging], info.metric, o->cancel);
		ivf::IvfSearchParams params;
		params.probes = staging ? 1 : (std::size_t)s5v_probes;
		params.max_probes = staging ? 1 : (std::size_t)s5v_max_probes;
		params.iterative = s5v_iterative_scan != S5V_ITERATIVE_OFF;
		// strict (and off): honest per-list bounds, so the cold stream widens by itself rather than hand out a
		// row that a list it has not read could beat.
		params.bounded = s5v_iterative_scan != S5V_ITERATIVE_RELAXED;
		// A LIMIT 10's rounds in one fetch of remote parts (the executor's LIMIT is not known here).
		params.lookahead_rows = 10;
		S5V_RETURN_IF_ERROR(o->cold[staging]->Start(query, params));
		S5V_RETURN_IF_ERROR(o->merge.AddStream(o->cold[staging].get()));
	}
	return Status::Ok();
}

} // namespace

IndexScanDesc BeginScan(Relation index, int nkeys, int norderbys) {
	IndexScanDesc scan = RelationGetIndexScan(index, nkeys, norderbys);
	ScanOpaque so = (ScanOpaque)palloc0(sizeof(ScanOpaqueData));
	so->info = GetIndexInfo(index);
	so->cxt = AllocSetContextCreate(CurrentMemoryContext, "s5vector scan", ALLOCSET_DEFAULT_SIZES);
	MemoryContextCallback *cb = (MemoryContextCallback *)MemoryContextAlloc(so->cxt, sizeof(MemoryContextCallback));
	cb->func = DeleteScanObjects;
	cb->arg = so;
	MemoryContextRegisterResetCallback(so->cxt, cb);
	so->query = (float *)MemoryContextAlloc(so->cxt, sizeof(float) * so->info.dimensions);
	so->page_items = (ScoredTid *)MemoryContextAlloc(so->cxt, sizeof(ScoredTid) * MaxOffsetNumber);
	so->coldcxt = AllocSetContextCreate(so->cxt, "s5vector scan cold lists", ALLOCSET_DEFAULT_SIZES);
	scan->opaque = so;
	// The scan interlock, for the scan's whole life: a mover waits for it between adding a row at its new
	// place and removing it from the old one, so no scan misses a row that moves while it runs.
	LockScanInterlock(index);
	so->interlocked = true;
	return scan;
}

void ReScan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys) {
	ScanOpaque so = (ScanOpaque)scan->opaque;
	if (keys && scan->numberOfKeys > 0)
		memmove(scan->keyData, keys, scan->numberOfKeys * sizeof(ScanKeyData));
	if (orderbys && scan->numberOfOrderBys > 0)
		memmove(scan->orderByData, orderbys, scan->numberOfOrderBys * sizeof(ScanKeyData));
	BuildAgeFilter(so, scan->keyData, scan->numberOfKeys);
	so->started = false;
	so->done = false;
	so->sweep = false;
	so->exhaustive = false;
	if (so->rest != nullptr)
		pfree(so->rest);
	so->rest = nullptr;
	so->rest_count = 0;
	delete so->objects;
	so->objects = nullptr;
	MemoryContextReset(so->coldcxt);
	so->cold_swept = false;
	so->cold_rows = nullptr;
	so->cold_count = 0;
	so->cold_pos = 0;
}

bool GetTuple(IndexScanDesc scan, ScanDirection dir) {
	ScanOpaque so = (ScanOpaque)scan->opaque;
	if (so->done || so->filter.impossible)
		return false;

	if (!so->started) {
		// Callers with other snapshots (SnapshotDirty for exclusion checks and replication lookups, SnapshotAny
		// for CLUSTER) need every matching row exactly, which an approximate search does not promise.
		if (scan->xs_snapshot == InvalidSnapshot || !IsMVCCSnapshot(scan->xs_snapshot))
			ereport(ERROR,
			        (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("s5vector index scans require an MVCC snapshot")));
		pgstat_count_index_scan(scan->indexRelation);
		so->started = true;
		bool have_query = scan->numberOfOrderBys > 0 && !(scan->orderByData[0].sk_flags & SK_ISNULL);
		if (have_query) {
			MemoryContext old = MemoryContextSwitchTo(so->cxt);
			have_query = PrepareVector(so->info, scan->orderByData[0].sk_argument, so->query);
			MemoryContextSwitchTo(old);
		}
		if (!have_query) {
			so->sweep = true;
			BeginHotPass(scan, so, &so->sweep_it, S5V_PAGE_ITER_GROW);
			so->sweep_count = 0;
			so->sweep_pos = 0;
		} else {
			Guarded([&]() -> Status {
				so->objects = new ScanObjects(scan->indexRelation, so->info);
				so->objects->store.SetAgeFilter(so->filter);
				hnsw::SearchParams params;
				params.ef_search = s5v_ef_search;
				params.iterative = s5v_iterative_scan != S5V_ITERATIVE_OFF;
				params.max_visits = (std::size_t)s5v_max_scan_tuples;
				params.max_memory = (std::size_t)std::min((double)work_mem * 1024.0 * s5v_scan_mem_multiplier, 1e15);
				S5V_RETURN_IF_ERROR(so->objects->searcher.Start(so->query, params));
				S5V_RETURN_IF_ERROR(so->objects->merge.AddStream(&so->objects->hot));
				return StartColdStreams(so->objects, scan->indexRelation, so->info, so->filter, so->coldcxt, so->query);
			});
		}
	}

	if (so->sweep) {
		while (so->sweep_pos >= so->sweep_count && !so->cold_swept) {
			if (!SweepNextPage(scan, so)) {
				// Cold tier hook: after the hot pages, every cold row (by following the lists).
				MemoryContext old = MemoryContextSwitchTo(so->coldcxt);
				so->cold_count = ColdCollectRows(scan->indexRelation, so->info, so->filter, nullptr, &so->cold_rows);
				MemoryContextSwitchTo(old);
				so->cold_pos = 0;
				so->cold_swept = true;
			}
		}
		if (so->cold_swept) {
			if (so->cold_pos >= so->cold_count) {
				so->done = true;
				return false;
			}
			scan->xs_heaptid = so->cold_rows[so->cold_pos++].tid;
			scan->xs_recheck = false;
			scan->xs_recheckorderby = false;
			return true;
		}
		scan->xs_heaptid = so->page_items[so->sweep_pos++].tid;
		scan->xs_recheck = false;
		scan->xs_recheckorderby = false;
		return true;
	}

	bool found = false;
	ItemPointerData tid;
	for (;;) {
		bool done = false;
		RowId row = 0;
		Guarded([&]() -> Status {
			ScoredRow r;
			S5V_RETURN_IF_ERROR(so->objects->merge.Next(r, done));
			row = r.row;
			return Status::Ok();
		});
		if (!done) {
			TidFromKey(row, &tid);
			found = true;
			break;
		}
		if (so->exhaustive || s5v_iterative_scan == S5V_ITERATIVE_OFF)
			break;
		// The graph has nothing more: on a small index, finish with an exact pass, a stream of every live
		// matching element (the merge skips the rows already returned).
		so->exhaustive = true;
		if (!ExactPassAllowed(scan->indexRelation))
			break;
		CollectAll(scan, so, &so->rest, &so->rest_count);
		ScoredTid *rest = so->rest;
		int64 n = so->rest_count;
		Guarded([&]() -> Status {
			std::vector<ScoredRow> rows;
			rows.reserve(n);
			for (int64 i = 0; i < n; i++)
				rows.push_back(ScoredRow{rest[i].distance, TidKey(rest[i].tid)});
			so->objects->exact = std::make_unique<SortedRowsStream>(std::move(rows));
			return so->objects->merge.AddStream(so->objects->exact.get());
		});
		pfree(so->rest);
		so->rest = nullptr;
		so->rest_count = 0;
	}
	if (!found) {
		so->done = true;
		return false;
	}
	scan->xs_heaptid = tid;
	scan->xs_recheck = false;
	scan->xs_recheckorderby = false;
	return true;
}

void EndScan(IndexScanDesc scan) {
	ScanOpaque so = (ScanOpaque)scan->opaque;
	if (so->interlocked)
		UnlockScanInterlock(scan->indexRelation);
	MemoryContextDelete(so->cxt);
	pfree(so);
	scan->opaque = nullptr;
}

} // namespace s5v::pg
