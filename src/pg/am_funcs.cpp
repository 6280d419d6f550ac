// SQL functions for operators: s5vector_index_stats(regclass) and s5vector_verify(regclass).
//
// Privileges (as pgstattuple 1.5+ and pg_stat_* functions decide): the caller must be a member of
// pg_stat_scan_tables (superusers are), or hold SELECT on the indexed table with no row-level security applying
// to it (row counts would tell more than the policies let it see). The index must be an s5vector index.
extern "C" {
#include "postgres.h"

#include "access/relation.h"
#include "access/table.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_am.h"
#include "catalog/pg_authid.h"
#include "commands/defrem.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

#include "pg/open_index.h"
#include "pg/cold_store.h"
#include "pg/graph_load.h"
#include "pg/guard.h"
#include "pg/index.h"
#include "pg/page_iter.h"
#include "pg/worker.h"
#include "pg/offload.h"
#include "pg/s5_glue.h"

#include <cmath>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

extern "C" {
PG_FUNCTION_INFO_V1(s5vector_index_stats);
PG_FUNCTION_INFO_V1(s5vector_verify);
PGDLLEXPORT Datum s5vector_index_stats(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum s5vector_verify(PG_FUNCTION_ARGS);
}

namespace s5v::pg {
namespace {

// Open an index, check that it is an s5vector index and that the caller may read what it tells about its table.
Relation OpenS5vIndex(Oid relid, LOCKMODE lock) {
	Relation index = OpenOurIndex(relid, lock);
	Oid heapid = index->rd_index->indrelid;
	Oid user = GetUserId();
	bool allowed = has_privs_of_role(user, ROLE_PG_STAT_SCAN_TABLES) ||
	               (pg_class_aclcheck(heapid, user, ACL_SELECT) == ACLCHECK_OK &&
	                check_enable_rls(heapid, InvalidOid, true) != RLS_ENABLED);
	if (!allowed) {
		char *name = pstrdup(RelationGetRelationName(index));
		char *table = get_rel_name(heapid);
		relation_close(index, lock);
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("permission denied for index %s", name),
		                errdetail("Only members of pg_stat_scan_tables, or roles with SELECT on table \"%s\" and no "
		                          "row-level security applying to them, may inspect its s5vector indexes.",
		                          table ? table : "?")));
	}
	return index;
}

const char *MetricName(uint8 metric) {
	switch ((s5v::Metric)metric) {
	case s5v::Metric::L2:
		return "l2";
	case s5v::Metric::InnerProduct:
		return "inner_product";
	case s5v::Metric::Cosine:
		return "cosine";
	case s5v::Metric::L1:
		return "l1";
	}
	return "unknown";
}

struct HeapCollect {
	const IndexInfoCache *info;
	float *vec;
	uint64 *tids;
	int64 n;
	int64 cap;
};

uint64 TidKey(ItemPointer t) {
	return ((uint64)ItemPointerGetBlockNumber(t) << 16) | ItemPointerGetOffsetNumber(t);
}

void CollectHeap(Relation index, ItemPointer tid, Datum *values, bool *isnull, bool alive, void *state) {
	HeapCollect *hc = (HeapCollect *)state;
	if (!alive || isnull[0])
		return;
	if (!PrepareVector(*hc->info, values[0], hc->vec))
		return;
	if (hc->n == hc->cap) {
		hc->cap *= 2;
		hc->tids = (uint64 *)repalloc_huge(hc->tids, sizeof(uint64) * hc->cap);
	}
	hc->tids[hc->n++] = TidKey(tid);
}

// Is an insert or a VACUUM working on the graph right now? (They hold the graph write lock.) A try, never a wait.
bool GraphWriterActive(Relation index) {
	if (!ConditionalLockPage(index, S5V_GRAPH_WRITE_LOCK, ExclusiveLock))
		return true;
	UnlockPage(index, S5V_GRAPH_WRITE_LOCK, ExclusiveLock);
	return false;
}

struct VerifyRow {
	const char *name;
	int state; // 1 ok, 0 failed, -1 inconclusive (NULL)
	char *detail;
};

void EmitRow(ReturnSetInfo *rsinfo, const char *name, int state, const char *detail) {
	Datum values[3];
	bool nulls[3] = {false, state < 0, false};
	values[0] = CStringGetTextDatum(name);
	values[1] = BoolGetDatum(state > 0);
	values[2] = CStringGetTextDatum(detail);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

} // namespace
} // namespace s5v::pg

using namespace s5v::pg;

Datum s5vector_index_stats(PG_FUNCTION_ARGS) {
	Oid relid = PG_GETARG_OID(0);
	Relation index = OpenS5vIndex(relid, AccessShareLock);
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);

	TupleDesc tupdesc;
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	// Cold tier hook: its rows and trained lists (cold_rows, cold_lists).
	ColdTierInfo tier;
	ReadColdTier(index, meta, meta.dimensions, &tier);
	Datum values[23];
	bool nulls[23] = {false};
	values[0] = Int32GetDatum((int32)meta.dimensions);
	values[1] = CStringGetTextDatum(MetricName(meta.metric));
	values[2] = Int32GetDatum(meta.m);
	values[3] = Int32GetDatum(meta.ef_construction);
	// The window in force (the reloption, which ALTER INDEX ... SET changes), not the build's in the metapage.
	Interval window;
	bool window_infinite;
	OptionHotWindow(index, &window, &window_infinite);
	if (window_infinite)
		values[4] = CStringGetTextDatum("infinity");
	else
		values[4] = CStringGetTextDatum(DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(&window))));
	values[5] = Int64GetDatum(meta.hot_elements);
	values[6] = Int64GetDatum(meta.hot_deleted);
	values[7] = Int32GetDatum(meta.entry_level);
	values[8] = Int64GetDatum((int64)nblocks);
	values[9] = Int64GetDatum((int64)nblocks * BLCKSZ);
	values[10] = Int64GetDatum(tier.cold_rows - tier.dead_rows);
	values[11] = Int32GetDatum((int32)tier.lists);
	// The last migration step (s5vector_migrate or the worker; NULL = never).
	values[12] = TimestampTzGetDatum(meta.worker.last_migration);
	nulls[12] = meta.worker.last_migration == 0;
	// Offload (offload.h): the remote tier's counters; cache counters are this backend's.
	RemoteTierStats remote;
	ReadRemoteTierStats(index, meta, meta.dimensions, &remote);
	values[13] = Int64GetDatum(remote.remote_rows);
	values[14] = Int64GetDatum(remote.segments);
	values[15] = Int64GetDatum(remote.remote_bytes);
	values[16] = Int64GetDatum(s5_fetch_counters.cache_hits);
	values[17] = Int64GetDatum(s5_fetch_counters.cache_misses);
	values[18] = Int64GetDatum(remote.gc_pending);
	values[19] = TimestampTzGetDatum(meta.worker.last_offload);
	nulls[19] = meta.worker.last_offload == 0;
	values[20] = TimestampTzGetDatum(meta.worker.last_gc);
	nulls[20] = meta.worker.last_gc == 0;
	// Background worker: whether one runs for this database, and its last error on this index (NULL: none).
	values[21] = CStringGetTextDatum(WorkerStateText());
	char *last_error = WorkerLastError(relid);
	values[22] = last_error ? CStringGetTextDatum(last_error) : (Datum)0;
	nulls[22] = last_error == nullptr;
	relation_close(index, AccessShareLock);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

// Reads the index and the table beside ordinary traffic: an MVCC snapshot taken before the index is read (a row
// it sees was indexed before it was committed, so before the snapshot), no waiting on rows being changed (rows of
// transactions still in progress are simply not in the snapshot), and a second look at the metapage at the end:
// when the index changed meanwhile, the checks that a concurrent insert or VACUUM can upset are reported as
// inconclusive (ok is NULL) instead of failed.
Datum s5vector_verify(PG_FUNCTION_ARGS) {
	Oid relid = PG_GETARG_OID(0);
	InitMaterializedSRF(fcinfo, 0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;

	Relation index = OpenS5vIndex(relid, AccessShareLock);
	Relation heap = table_open(index->rd_index->indrelid, AccessShareLock);
	S5vMetaPageData meta;
	BlockNumber meta_nblocks;
	ReadMetaPageRaw(index, &meta, &meta_nblocks);
	char *problems[32];
	int nproblems = CheckMetaPage(index, &meta, meta_nblocks, problems, lengthof(problems));
	static const char *const kChecks[] = {"pages",        "neighbour tuples", "links",   "entry point",
	                                      "reachability", "heap coverage",    "counters"};
	if (nproblems > 0) {
		// Nothing else can be read safely with these settings: one row per bad field, the other checks not run.
		for (int i = 0; i < Min(nproblems, (int)lengthof(problems)); i++)
			EmitRow(rsinfo, "metapage", 0, psprintf("field %s", problems[i]));
		for (const char *name : kChecks)
			EmitRow(rsinfo, name, -1, "not checked: the metapage is corrupted");
		table_close(heap, AccessShareLock);
		relation_close(index, AccessShareLock);
		return (Datum)0;
	}
	IndexInfoCache info = GetIndexInfo(index);

	bool writer_at_start = GraphWriterActive(index);
	Snapshot snapshot = RegisterSnapshot(GetTransactionSnapshot());

	// Read every element and its neighbour slots into plain arrays.
	LoadedGraph graph;
	S5vPageIter it;
	int64 nonfinite_vectors;
	BufferAccessStrategy load_strategy = GetAccessStrategy(BAS_BULKREAD);
	LoadGraph(index, info, load_strategy, &graph, &it, &nonfinite_vectors);
	FreeAccessStrategy(load_strategy);
	LoadedElement *els = graph.elements;
	int64 nel = graph.count;
	int64 bad_pages = graph.bad_pages;
	int64 missing_neighbor_tuples = graph.missing_neighbor_tuples;
	BlockNumber nblocks = it.nblocks;
	// Cold tier hook: the cold rows (by following the lists) count as held by the index.
	ColdRow *cold_rows;
	AgeFilter no_filter;
	int64 ncold = ColdCollectRows(index, info, no_filter, nullptr, &cold_rows);
	ColdVerifyResult cold;
	ColdVerify(index, info, &cold);
	int64 both_tiers = 0;
	// Heap TIDs that cannot point at a row: offset 0 or past what a page holds, or a block the table does not
	// have (read after the index: the table only grows while we hold our lock, so a row inserted meanwhile is
	// on a block that exists by now).
	BlockNumber heap_blocks = RelationGetNumberOfBlocks(heap);
	int64 bad_heap_tids = 0;
	for (int64 i = 0; i < nel; i++) {
		ItemPointer t = &els[i].heaptid;
		OffsetNumber off = ItemPointerGetOffsetNumberNoCheck(t);
		if (ItemPointerGetBlockNumberNoCheck(t) >= heap_blocks || off < FirstOffsetNumber || off > MaxHeapTuplesPerPage)
			bad_heap_tids++;
	}

	// Live heap rows that the index must hold: those the snapshot sees (heap-only tuples count as their root).
	IndexInfo *ii = BuildIndexInfo(index);
	ii->ii_Concurrent = true; // an MVCC snapshot, not SnapshotAny: no waits, no warnings about concurrent changes
	HeapCollect hc;
	hc.info = &info;
	hc.vec = (float *)palloc(sizeof(float) * info.dimensions);
	hc.cap = 1024;
	hc.n = 0;
	hc.tids = (uint64 *)palloc_extended(sizeof(uint64) * hc.cap, MCXT_ALLOC_HUGE);
	TableScanDesc scan = table_beginscan_strat(heap, snapshot, 0, NULL, true, false);
	table_index_build_scan(heap, index, ii, true, false, CollectHeap, &hc, scan); // ends the scan
	UnregisterSnapshot(snapshot);

	// Did the index change while we read it?
	S5vMetaPageData after;
	BlockNumber after_nblocks;
	ReadMetaPageRaw(index, &after, &after_nblocks);
	bool changed = after.hot_elements != meta.hot_elements || after.hot_deleted != meta.hot_deleted ||
	               after.entry_blkno != meta.entry_blkno || after.entry_offno != meta.entry_offno ||
	               after.entry_level != meta.entry_level || after.insert_page != meta.insert_page ||
	               after_nblocks != meta_nblocks || nblocks != meta_nblocks;
	bool writer_at_end = GraphWriterActive(index);
	changed = changed || writer_at_start || writer_at_end;

	uint64 entry =
	    meta.entry_blkno == InvalidBlockNumber ? ~(uint64)0 : NodeIdFromTid(meta.entry_blkno, meta.entry_offno);

	// The graph checks are plain computation over the arrays.
	int64 dangling = 0, bad_levels = 0, self_links = 0, unreachable = 0, missing_heap = 0, live = 0, unseen_entries = 0;
	bool entry_ok = true;
	Guarded([&]() -> s5v::Status {
		std::unordered_map<uint64, int64> index_of;
		index_of.reserve(nel);
		std::unordered_set<uint64> heap_tids_in_index;
		for (int64 i = 0; i < nel; i++) {
			index_of[els[i].id] = i;
			if (!(els[i].flags & S5V_ELEMENT_DELETED)) {
				heap_tids_in_index.insert(TidKey(&els[i].heaptid));
				live++;
			}
		}
		for (int64 i = 0; i < nel; i++) {
			for (int k = 0; k < els[i].nlinks; k++) {
				auto found = index_of.find(els[i].links[k]);
				if (found == index_of.end()) {
					dangling++;
					continue;
				}
				if (els[found->second].level < els[i].link_levels[k])
					bad_levels++;
				if (els[i].links[k] == els[i].id)
					self_links++;
			}
		}
		if (nel > 0) {
			auto found = index_of.find(entry);
			if (found == index_of.end()) {
				entry_ok = false;
			} else {
				int top = 0;
				for (int64 i = 0; i < nel; i++)
					top = std::max(top, (int)els[i].level);
				if (els[found->second].level != meta.entry_level || meta.entry_level < top)
					entry_ok = false;
			}
			std::vector<uint64> lost;
			S5V_RETURN_IF_ERROR(UnreachableElements(graph, entry, lost));
			unreachable = (int64)lost.size();
		} else if (entry != ~(uint64)0) {
			entry_ok = false;
		}
		for (int64 i = 0; i < ncold; i++)
			both_tiers += heap_tids_in_index.count(TidKey(&cold_rows[i].tid)) ? 1 : 0;
		for (int64 i = 0; i < ncold; i++)
			heap_tids_in_index.insert(TidKey(&cold_rows[i].tid));
		for (int64 i = 0; i < hc.n; i++)
			if (!heap_tids_in_index.count(hc.tids[i]))
				missing_heap++;
		// The other way round: index entries whose heap row the snapshot does not see (deleted rows that VACUUM
		// has not removed yet, or rows inserted after the snapshot). Reported, not a fault.
		std::unordered_set<uint64> heap_live(hc.tids, hc.tids + hc.n);
		for (int64 i = 0; i < nel; i++)
			if (!(els[i].flags & S5V_ELEMENT_DELETED) && !heap_live.count(TidKey(&els[i].heaptid)))
				unseen_entries++;
		for (int64 i = 0; i < ncold; i++)
			if (!heap_live.count(TidKey(&cold_rows[i].tid)))
				unseen_entries++;
		return s5v::Status::Ok();
	});

	bool ip = (s5v::Metric)meta.metric == s5v::Metric::InnerProduct;
	// A failure that a concurrent change can explain is inconclusive, not a fault.
	auto state = [changed](bool ok) { return ok ? 1 : (changed ? -1 : 0); };
	const char *note = changed ? " (the index changed while verify ran: inconclusive, run it again)" : "";
	VerifyRow rows[] = {
	    {"metapage", 1,
	     psprintf("format %u, %u dimensions, metric %s, m %d, ef_construction %d", meta.version, meta.dimensions,
	              MetricName(meta.metric), meta.m, meta.ef_construction)},
	    {"pages", bad_pages == 0 && nonfinite_vectors == 0 ? 1 : 0,
	     psprintf("%u pages (%lld hot, %lld new), %lld with a bad page header, %lld elements with a non-finite "
	              "vector",
	              nblocks, (long long)it.pages_returned, (long long)it.new_pages, (long long)bad_pages,
	              (long long)nonfinite_vectors)},
	    {"neighbour tuples", state(missing_neighbor_tuples == 0),
	     psprintf("%lld elements without a valid neighbour tuple%s", (long long)missing_neighbor_tuples,
	              missing_neighbor_tuples ? note : "")},
	    {"links", state(dangling == 0 && bad_levels == 0 && self_links == 0),
	     psprintf("%lld dangling, %lld to a lower level, %lld self links%s", (long long)dangling, (long long)bad_levels,
	              (long long)self_links, dangling + bad_levels + self_links ? note : "")},
	    {"entry point", state(entry_ok), psprintf("level %d%s", meta.entry_level, entry_ok ? "" : note)},
	    // Under inner product (not a metric) HNSW leaves low-norm elements without in-links; scans still return
	    // them through their exhaustive pass, so it is reported but is not a fault there.
	    {"reachability", state(unreachable == 0 || ip),
	     psprintf("%lld of %lld live elements unreachable from the entry point%s%s", (long long)unreachable,
	              (long long)live,
	              unreachable > 0 && ip ? " (inner product: scans reach them through the exhaustive pass)" : "",
	              unreachable > 0 && !ip ? note : "")},
	    {"heap coverage", bad_heap_tids == 0 ? state(missing_heap == 0) : 0,
	     psprintf("%lld of %lld live heap rows missing from the index%s, %lld elements with a heap TID outside the "
	              "table, %lld index entries without a visible heap row (deleted rows that VACUUM has not removed "
	              "yet)",
	              (long long)missing_heap, (long long)hc.n, missing_heap ? note : "", (long long)bad_heap_tids,
	              (long long)unseen_entries)},
	    {"counters", state(meta.hot_elements == live),
	     psprintf("metapage counts %lld live elements, pages hold %lld%s", (long long)meta.hot_elements,
	              (long long)live, meta.hot_elements != live ? note : "")},
	};
	for (auto &r : rows)
		EmitRow(rsinfo, r.name, r.state, r.detail);
	// Cold tier hook (only for an index that has one): list counters and age ranges as the pages hold them, each
	// heap TID once in the cold tier; a TID in both tiers is what a migration that did not finish leaves (the
	// next s5vector_migrate removes it from the graph), so it makes the check inconclusive, not failed.
	if (cold.exists) {
		// Duplicates while a rebalance step is unfinished are its moves in flight (the next step removes them).
		bool moving = cold.duplicate_tids > 0 && cold.rebalance_pending;
		bool cold_ok = cold.bad_list_counters == 0 && cold.bad_age_ranges == 0 &&
		               (cold.duplicate_tids == 0 || moving) && cold.rows == cold.meta_rows &&
		               cold.dead == cold.meta_dead;
		int cold_state = !cold_ok ? state(false) : (both_tiers > 0 || moving ? -1 : 1);
		EmitRow(rsinfo, "cold tier", cold_state,
		        psprintf("%lld rows in %u lists and staging (%lld dead; the cold metapage counts %lld and %lld), %lld "
		                 "lists with a wrong row counter, %lld rows outside their list's age range, %lld heap TIDs "
		                 "held twice, %lld rows in both tiers%s%s",
		                 (long long)cold.rows, cold.lists, (long long)cold.dead, (long long)cold.meta_rows,
		                 (long long)cold.meta_dead, (long long)cold.bad_list_counters, (long long)cold.bad_age_ranges,
		                 (long long)cold.duplicate_tids, (long long)both_tiers,
		                 both_tiers > 0 ? " (a migration did not finish: run s5vector_migrate)"
		                 : moving       ? " (a rebalance did not finish: run s5vector_rebalance)"
		                                : "",
		                 !cold_ok ? note : ""));
	}
	// Offload hook: every referenced blob fetched (no cache) and checked; one row per failure, then a summary.
	if (cold.exists) {
		struct FailSink {
			ReturnSetInfo *rsinfo;
		} sink{rsinfo};
		int64 failures = 0;
		int64 checked = VerifyRemoteParts(
		    index, info,
		    [](void *arg, const char *detail) { EmitRow(((FailSink *)arg)->rsinfo, "remote segment", 0, detail); },
		    &sink, 1000, &failures);
		RemoteTierStats remote;
		ReadRemoteTierStats(index, meta, info.dimensions, &remote);
		if (checked > 0 || remote.gc_pending > 0)
			EmitRow(rsinfo, "remote segments", failures == 0 ? 1 : 0,
			        psprintf("%lld segments fetched and checked (hash, decryption, decoding, identity), %lld failed; "
			                 "%lld blobs in the collection queue",
			                 (long long)checked, (long long)failures, (long long)remote.gc_pending));
	}
	if (changed)
		EmitRow(rsinfo, "concurrent changes", 1,
		        psprintf("the index changed while verify ran: %lld live elements at the start, %lld at the end, %u "
		                 "pages at the start, %u at the end%s",
		                 (long long)meta.hot_elements, (long long)after.hot_elements, meta_nblocks, after_nblocks,
		                 writer_at_start || writer_at_end ? ", a writer was working on the graph" : ""));
	table_close(heap, AccessShareLock);
	relation_close(index, AccessShareLock);
	return (Datum)0;
}
