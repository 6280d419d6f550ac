// SQL functions for operators: s5vector_index_stats(regclass) and s5vector_verify(regclass).
extern "C" {
#include "postgres.h"

#include "access/relation.h"
#include "access/table.h"
#include "commands/defrem.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_am.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

#include "pg/guard.h"
#include "pg/graph_load.h"
#include "pg/index.h"

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

// Open an index and check that it is an s5vector index.
Relation OpenS5vIndex(Oid relid, LOCKMODE lock) {
	Relation index = relation_open(relid, lock);
	if (index->rd_rel->relkind != RELKIND_INDEX || index->rd_rel->relam != get_am_oid("s5vector", false)) {
		char *name = pstrdup(RelationGetRelationName(index));
		relation_close(index, lock);
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("\"%s\" is not an s5vector index", name)));
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

} // namespace
} // namespace s5v::pg

using namespace s5v::pg;

Datum s5vector_index_stats(PG_FUNCTION_ARGS) {
	Oid relid = PG_GETARG_OID(0);
	Relation index = OpenS5vIndex(relid, AccessShareLock);
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	relation_close(index, AccessShareLock);

	TupleDesc tupdesc;
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	Datum values[10];
	bool nulls[10] = {false};
	values[0] = Int32GetDatum((int32)meta.dimensions);
	values[1] = CStringGetTextDatum(MetricName(meta.metric));
	values[2] = Int32GetDatum(meta.m);
	values[3] = Int32GetDatum(meta.ef_construction);
	if (meta.hot_window_infinite)
		values[4] = CStringGetTextDatum("infinity");
	else
		values[4] = CStringGetTextDatum(
		    DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(&meta.hot_window))));
	values[5] = Int64GetDatum(meta.hot_elements);
	values[6] = Int64GetDatum(meta.hot_deleted);
	values[7] = Int32GetDatum(meta.entry_level);
	values[8] = Int64GetDatum((int64)nblocks);
	values[9] = Int64GetDatum((int64)nblocks * BLCKSZ);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

Datum s5vector_verify(PG_FUNCTION_ARGS) {
	Oid relid = PG_GETARG_OID(0);
	InitMaterializedSRF(fcinfo, 0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;

	Relation index = OpenS5vIndex(relid, AccessShareLock);
	Relation heap = table_open(index->rd_index->indrelid, AccessShareLock);
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	IndexInfoCache info = GetIndexInfo(index);

	// Read every element and its neighbour slots into plain arrays.
	LoadedGraph graph;
	LoadGraph(index, info, NULL, &graph);
	LoadedElement *els = graph.elements;
	int64 nel = graph.count;
	int64 bad_pages = graph.bad_pages;
	int64 missing_neighbor_tuples = graph.missing_neighbor_tuples;
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);

	// Live heap rows that the index must hold.
	IndexInfo *ii = BuildIndexInfo(index);
	HeapCollect hc;
	hc.info = &info;
	hc.vec = (float *)palloc(sizeof(float) * info.dimensions);
	hc.cap = 1024;
	hc.n = 0;
	hc.tids = (uint64 *)palloc_extended(sizeof(uint64) * hc.cap, MCXT_ALLOC_HUGE);
	table_index_build_scan(heap, index, ii, false, false, CollectHeap, &hc, NULL);

	uint64 entry =
	    meta.entry_blkno == InvalidBlockNumber ? ~(uint64)0 : NodeIdFromTid(meta.entry_blkno, meta.entry_offno);

	// The graph checks are plain computation over the arrays.
	int64 dangling = 0, bad_levels = 0, self_links = 0, unreachable = 0, missing_heap = 0, live = 0;
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
				auto it = index_of.find(els[i].links[k]);
				if (it == index_of.end()) {
					dangling++;
					continue;
				}
				if (els[it->second].level < els[i].link_levels[k])
					bad_levels++;
				if (els[i].links[k] == els[i].id)
					self_links++;
			}
		}
		if (nel > 0) {
			auto it = index_of.find(entry);
			if (it == index_of.end()) {
				entry_ok = false;
			} else {
				int top = 0;
				for (int64 i = 0; i < nel; i++)
					top = std::max(top, (int)els[i].level);
				if (els[it->second].level != meta.entry_level || meta.entry_level < top)
					entry_ok = false;
			}
			std::vector<uint64> lost;
			S5V_RETURN_IF_ERROR(UnreachableElements(graph, entry, lost));
			unreachable = (int64)lost.size();
		} else if (entry != ~(uint64)0) {
			entry_ok = false;
		}
		for (int64 i = 0; i < hc.n; i++)
			if (!heap_tids_in_index.count(hc.tids[i]))
				missing_heap++;
		return s5v::Status::Ok();
	});

	struct {
		const char *name;
		bool ok;
		char *detail;
	} rows[] = {
	    {"metapage", true,
	     psprintf("format %u, %u dimensions, metric %s, m %d, ef_construction %d", meta.version, meta.dimensions,
	              MetricName(meta.metric), meta.m, meta.ef_construction)},
	    {"pages", bad_pages == 0, psprintf("%u pages, %lld with a bad page header", nblocks, (long long)bad_pages)},
	    {"neighbour tuples", missing_neighbor_tuples == 0,
	     psprintf("%lld elements without a valid neighbour tuple", (long long)missing_neighbor_tuples)},
	    {"links", dangling == 0 && bad_levels == 0 && self_links == 0,
	     psprintf("%lld dangling, %lld to a lower level, %lld self links", (long long)dangling, (long long)bad_levels,
	              (long long)self_links)},
	    {"entry point", entry_ok, psprintf("level %d", meta.entry_level)},
	    // Under inner product (not a metric) HNSW leaves low-norm elements without in-links; scans still return
	    // them through their exhaustive pass, so it is reported but is not a fault there.
	    {"reachability", unreachable == 0 || (s5v::Metric)meta.metric == s5v::Metric::InnerProduct,
	     psprintf("%lld of %lld live elements unreachable from the entry point%s", (long long)unreachable,
	              (long long)live,
	              unreachable > 0 && (s5v::Metric)meta.metric == s5v::Metric::InnerProduct
	                  ? " (inner product: scans reach them through the exhaustive pass)"
	                  : "")},
	    {"heap coverage", missing_heap == 0,
	     psprintf("%lld of %lld live heap rows missing from the index", (long long)missing_heap, (long long)hc.n)},
	    {"counters", meta.hot_elements == live,
	     psprintf("metapage counts %lld live elements, pages hold %lld", (long long)meta.hot_elements,
	              (long long)live)},
	};
	for (auto &r : rows) {
		Datum values[3];
		bool nulls[3] = {false, false, false};
		values[0] = CStringGetTextDatum(r.name);
		values[1] = BoolGetDatum(r.ok);
		values[2] = CStringGetTextDatum(r.detail);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	table_close(heap, AccessShareLock);
	relation_close(index, AccessShareLock);
	return (Datum)0;
}
