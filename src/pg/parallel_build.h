// Parallel CREATE INDEX / REINDEX (max_parallel_maintenance_workers): workers and the leader scan disjoint parts of
// the heap (a parallel table scan) and insert into one hnsw::SharedGraph in the parallel context's dynamic shared
// memory; after the scan the leader alone writes the pages from it (am_build.cpp, as the serial build does).
// Serial instead when: the planner gives no worker (plan_create_index_workers: max_parallel_maintenance_workers = 0,
// a temporary table, a small table without a parallel_workers setting), the index has a cold part, the graph of
// the estimated rows does not fit into maintenance_work_mem (NOTICE), no worker could be launched, or the shared
// graph filled up because the table has more rows than estimated (NOTICE, then a serial build from the start).
// Plain C structs only: PostgreSQL errors may jump over every frame that holds them.
#pragma once

extern "C" {
#include "postgres.h"

#include "nodes/execnodes.h"
#include "storage/itemptr.h"
#include "utils/relcache.h"
}

#include "core/hnsw_shared.h"
#include "pg/index.h"

namespace s5v::pg {

// What a node of the shared graph carries for the page writer (SharedGraph payload).
struct S5vBuildRow {
	ItemPointerData tid;
	uint8 flags;
	uint8 pad;
	int64 age;
};

struct ParallelBuild; // the leader's state (palloc'd; the parallel context and the leader's graph view)

// Plan and start a parallel build: NULL when it stays serial (see above). `has_cold`: the index has a cold part.
ParallelBuild *ParallelBuildBegin(Relation heap, Relation index, IndexInfo *indexInfo, const IndexInfoCache &info,
                                  Size memory_limit, bool has_cold);
// The leader's share of the scan, then wait for every worker (errors of workers are raised here). False when the
// shared graph filled up: the caller ends the parallel build and builds serially.
bool ParallelBuildScan(ParallelBuild *pb, double *heap_tuples, double *index_tuples);
// The graph every participant built (valid until ParallelBuildEnd).
hnsw::SharedGraph &ParallelBuildGraph(ParallelBuild *pb);
// Tear down the parallel context and leave parallel mode.
void ParallelBuildEnd(ParallelBuild *pb);

// Both builds refuse rows that the vector type itself refuses (NaN, infinity: possible only through corruption):
// raises ERRCODE_DATA_EXCEPTION with the type's message. `prepared` is what PrepareVector returned.
void CheckBuildVector(const IndexInfoCache &info, Datum value, const float *vec, bool prepared);

} // namespace s5v::pg
