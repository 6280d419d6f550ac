// Parallel index build (parallel_build.h): the parallel context, the participants' scan into the shared graph, and
// the worker entry point. Modelled on PostgreSQL's own parallel builds (nbtsort.c, brin.c): a shared state with a
// parallel table scan, workers that open the relations with the leader's lock modes, the leader joining the scan,
// a condition variable for "every participant is done", buffer/WAL usage handed back to the leader.
extern "C" {
#include "postgres.h"

#include "access/genam.h"
#include "access/heaptoast.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "commands/progress.h"
#include "executor/instrument.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "optimizer/plancat.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/bufpage.h"
#include "storage/condition_variable.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

#include "pg/guard.h"
#include "pg/parallel_build.h"
#include "pg/vector.h"

#include <cmath>

// Looked up by name in the library by every parallel worker (CreateParallelContext).
extern "C" {
PGDLLEXPORT void s5v_parallel_build_main(dsm_segment *seg, shm_toc *toc);
}

namespace s5v::pg {

namespace {

// Keys of the parallel context's table of contents.
constexpr uint64 kKeyShared = UINT64CONST(0x5356000000000001);
constexpr uint64 kKeyGraph = UINT64CONST(0x5356000000000002);
constexpr uint64 kKeyQueryText = UINT64CONST(0x5356000000000003);
constexpr uint64 kKeyWalUsage = UINT64CONST(0x5356000000000004);
constexpr uint64 kKeyBufferUsage = UINT64CONST(0x5356000000000005);

// The state every participant shares (in the DSM segment); a ParallelTableScanDesc follows it.
struct S5vParallelShared {
	// Set by the leader before the workers start.
	Oid heaprelid;
	Oid indexrelid;
	bool isconcurrent;
	IndexInfoCache info;
	Size graph_bytes;
	// Changed by the participants.
	slock_t mutex;
	ConditionVariable workersdonecv;
	int nparticipantsdone;
	double heap_tuples;
	double index_tuples;
	pg_atomic_uint64 tuples_done; // rows inserted by every participant so far (progress)
};

#define ParallelTableScanFromShared(shared)                                                                            \
	((ParallelTableScanDesc)((char *)(shared) + BUFFERALIGN(sizeof(S5vParallelShared))))

// The graph block inside its TOC chunk, 64-byte aligned (the segment is mapped page-aligned in every process, so
// the offset is the same everywhere).
void *GraphBlock(void *chunk) {
	return (void *)TYPEALIGN(64, (uintptr_t)chunk);
}

// C++ objects of one participant, owned by a memory context (deleted by its reset callback, also on error).
struct ParticipantObjects {
	hnsw::SharedGraph graph;
	InterruptToken cancel;
	ParticipantObjects(void *block, std::size_t bytes) : graph(block, bytes) {}
};

void DeleteParticipantObjects(void *arg) {
	ParticipantObjects **objs = (ParticipantObjects **)arg;
	delete *objs;
	*objs = nullptr;
}

// Plain state of a participant's scan.
struct ParticipantState {
	S5vParallelShared *shared;
	IndexInfoCache info;
	ParticipantObjects *objects;
	MemoryContext tmpcxt;
	float *vec;
	double index_tuples;
	bool progress; // the leader reports progress
	bool overflow; // the shared graph is full: the rest of the scan only counts
};

// The level of a row: from its TID, so that it does not depend on which participant reads the row.
int LevelOfRow(const IndexInfoCache &info, ItemPointer tid) {
	uint64 x = ((uint64)ItemPointerGetBlockNumber(tid) << 16) | ItemPointerGetOffsetNumber(tid);
	x ^= UINT64CONST(0x5355564543544f52);
	x += UINT64CONST(0x9E3779B97F4A7C15);
	x = (x ^ (x >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	x = (x ^ (x >> 27)) * UINT64CONST(0x94D049BB133111EB);
	x ^= x >> 31;
	return Min(hnsw::RandomLevel(info.m, x), info.max_level);
}

void ParallelBuildCallback(Relation index, ItemPointer tid, Datum *values, bool *isnull, bool tupleIsAlive,
                           void *state) {
	ParticipantState *ps = (ParticipantState *)state;
	if (isnull[0])
		return;
	MemoryContext old = MemoryContextSwitchTo(ps->tmpcxt);
	bool prepared = PrepareVector(ps->info, values[0], ps->vec);
	CheckBuildVector(ps->info, values[0], ps->vec, prepared);
	if (prepared) {
		S5vBuildRow row;
		memset(&row, 0, sizeof(row));
		row.tid = *tid;
		row.age = RowAge(ps->info, values, isnull, &row.flags);
		if (!ps->overflow) {
			int level = LevelOfRow(ps->info, tid);
			ParticipantObjects *objs = ps->objects;
			float *vec = ps->vec;
			bool full = false;
			Guarded([&]() -> Status {
				hnsw::NodeId id;
				Status st = objs->graph.Add(vec, level, &row, id);
				if (st.code() == StatusCode::LimitExceeded) {
					full = true;
					return Status::Ok();
				}
				S5V_RETURN_IF_ERROR(st);
				return objs->graph.InsertConcurrent(id, objs->cancel);
			});
			ps->overflow = full || objs->graph.full();
		}
		ps->index_tuples++;
		uint64 done = pg_atomic_add_fetch_u64(&ps->shared->tuples_done, 1);
		if (ps->progress && done % 256 == 0)
			pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64)done);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(ps->tmpcxt);
}

// One participant's share of the scan (leader or worker): join the parallel scan, insert its rows, report.
void ParticipateInScan(S5vParallelShared *shared, void *graph_chunk, Relation heap, Relation index, bool progress) {
	IndexInfo *indexInfo = BuildIndexInfo(index);
	indexInfo->ii_Concurrent = shared->isconcurrent;

	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "s5vector parallel build", ALLOCSET_SMALL_SIZES);
	ParticipantState *ps = (ParticipantState *)MemoryContextAllocZero(cxt, sizeof(ParticipantState));
	ps->shared = shared;
	ps->info = shared->info;
	ps->progress = progress;
	ps->vec = (float *)MemoryContextAlloc(cxt, sizeof(float) * ps->info.dimensions);
	ps->tmpcxt = AllocSetContextCreate(cxt, "s5vector parallel build temporary context", ALLOCSET_DEFAULT_SIZES);
	MemoryContextCallback *cb = (MemoryContextCallback *)MemoryContextAlloc(cxt, sizeof(MemoryContextCallback));
	cb->func = DeleteParticipantObjects;
	cb->arg = &ps->objects;
	MemoryContextRegisterResetCallback(cxt, cb);
	void *block = GraphBlock(graph_chunk);
	Size bytes = shared->graph_bytes;
	Guarded([&]() -> Status {
		ps->objects = new ParticipantObjects(block, bytes);
		return ps->objects->graph.status();
	});

	TableScanDesc scan = table_beginscan_parallel(heap, ParallelTableScanFromShared(shared));
	double reltuples =
	    table_index_build_scan(heap, index, indexInfo, true, progress, ParallelBuildCallback, (void *)ps, scan);

	SpinLockAcquire(&shared->mutex);
	shared->nparticipantsdone++;
	shared->heap_tuples += reltuples;
	shared->index_tuples += ps->index_tuples;
	SpinLockRelease(&shared->mutex);
	ConditionVariableSignal(&shared->workersdonecv);
	MemoryContextDelete(cxt);
}

// Rows the heap holds, as the planner estimates them, bounded for a table never analysed (the estimate then
// assumes 32-byte vectors) by what its pages can hold of rows with an inline vector of this many dimensions.
double EstimateRows(Relation heap, const IndexInfoCache &info) {
	BlockNumber pages;
	double tuples, allvisfrac;
	estimate_rel_size(heap, NULL, &pages, &tuples, &allvisfrac);
	Size vector_bytes = MAXALIGN(offsetof(VectorData, x) + sizeof(float) * info.dimensions);
	Size row_bytes = MAXALIGN(SizeofHeapTupleHeader) + vector_bytes + sizeof(ItemIdData);
	if (heap->rd_rel->reltuples < 0 && row_bytes < TOAST_TUPLE_THRESHOLD) {
		double per_page = floor((double)(BLCKSZ - SizeOfPageHeaderData) / (double)row_bytes);
		tuples = Min(tuples, per_page * (double)pages);
	}
	return Max(tuples, 0.0);
}

} // namespace

struct ParallelBuild {
	ParallelContext *pcxt;
	Snapshot snapshot;
	S5vParallelShared *shared;
	void *graph_chunk;
	int nparticipants;
	WalUsage *walusage;
	BufferUsage *bufferusage;
	Relation heap;
	Relation index;
	MemoryContext cxt; // owns leader_graph (reset callback)
	hnsw::SharedGraph *leader_graph;
};

namespace {

void DeleteLeaderGraph(void *arg) {
	hnsw::SharedGraph **g = (hnsw::SharedGraph **)arg;
	delete *g;
	*g = nullptr;
}

} // namespace

void CheckBuildVector(const IndexInfoCache &info, Datum value, const float *vec, bool prepared) {
	if (prepared && info.metric == s5v::Metric::Cosine)
		return; // normalised with a finite norm: every element is finite
	const float *x = vec;
	if (!prepared) {
		if (info.metric != s5v::Metric::Cosine)
			return;
		x = DatumGetVector(value)->x; // not indexed (zero or not finite norm): say which
	}
	for (uint32 i = 0; i < info.dimensions; i++) {
		if (std::isnan(x[i]))
			ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("NaN not allowed in vector")));
		if (std::isinf(x[i]))
			ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("infinite value not allowed in vector")));
	}
}

ParallelBuild *ParallelBuildBegin(Relation heap, Relation index, IndexInfo *indexInfo, const IndexInfoCache &info,
                                  Size memory_limit, bool has_cold) {
	if (heap == NULL || IsInParallelMode())
		return NULL;
	int request = plan_create_index_workers(RelationGetRelid(heap), RelationGetRelid(index));
	if (request <= 0)
		return NULL;
	if (has_cold) {
		ereport(DEBUG1, (errmsg("s5vector: building serially: parallel builds do not support a cold part")));
		return NULL;
	}
	hnsw::Params params{info.m, info.ef_construction};
	double rows = EstimateRows(heap, info);
	double cap = ceil(rows * 1.05) + 1000;
	if (cap > 4.0e9)
		cap = 4.0e9;
	Size bytes = hnsw::SharedGraph::BytesFor((std::size_t)cap, info.dimensions, params, sizeof(S5vBuildRow));
	if (bytes == 0 || bytes + 64 > memory_limit) {
		ereport(NOTICE,
		        (errmsg("s5vector: the graph of about %.0f rows does not fit into maintenance_work_mem for a parallel "
		                "build, building serially",
		                rows),
		         errdetail("The shared graph needs %zu kB, maintenance_work_mem is %zu kB.", (size_t)(bytes / 1024),
		                   (size_t)(memory_limit / 1024)),
		         errhint("Increase maintenance_work_mem to build with parallel workers.")));
		return NULL;
	}

	EnterParallelMode();
	ParallelContext *pcxt = CreateParallelContext("s5vector", "s5v_parallel_build_main", request);
	bool isconcurrent = indexInfo->ii_Concurrent;
	Snapshot snapshot = isconcurrent ? RegisterSnapshot(GetTransactionSnapshot()) : SnapshotAny;

	Size estshared = add_size(BUFFERALIGN(sizeof(S5vParallelShared)), table_parallelscan_estimate(heap, snapshot));
	shm_toc_estimate_chunk(&pcxt->estimator, estshared);
	shm_toc_estimate_chunk(&pcxt->estimator, bytes + 64);
	shm_toc_estimate_chunk(&pcxt->estimator, mul_size(sizeof(WalUsage), pcxt->nworkers));
	shm_toc_estimate_chunk(&pcxt->estimator, mul_size(sizeof(BufferUsage), pcxt->nworkers));
	shm_toc_estimate_keys(&pcxt->estimator, 4);
	Size querylen = 0;
	if (debug_query_string) {
		querylen = strlen(debug_query_string);
		shm_toc_estimate_chunk(&pcxt->estimator, querylen + 1);
		shm_toc_estimate_keys(&pcxt->estimator, 1);
	}
	InitializeParallelDSM(pcxt);
	if (pcxt->seg == NULL) {
		// No DSM segment was available: serial.
		if (IsMVCCSnapshot(snapshot))
			UnregisterSnapshot(snapshot);
		DestroyParallelContext(pcxt);
		ExitParallelMode();
		ereport(DEBUG1, (errmsg("s5vector: building serially: no dynamic shared memory segment available")));
		return NULL;
	}

	S5vParallelShared *shared = (S5vParallelShared *)shm_toc_allocate(pcxt->toc, estshared);
	memset(shared, 0, sizeof(S5vParallelShared));
	shared->heaprelid = RelationGetRelid(heap);
	shared->indexrelid = RelationGetRelid(index);
	shared->isconcurrent = isconcurrent;
	shared->info = info;
	shared->graph_bytes = bytes;
	SpinLockInit(&shared->mutex);
	ConditionVariableInit(&shared->workersdonecv);
	pg_atomic_init_u64(&shared->tuples_done, 0);
	table_parallelscan_initialize(heap, ParallelTableScanFromShared(shared), snapshot);

	void *graph_chunk = shm_toc_allocate(pcxt->toc, bytes + 64);
	{
		void *block = GraphBlock(graph_chunk);
		std::size_t capacity = (std::size_t)cap;
		Guarded([&]() -> Status {
			return hnsw::SharedGraph::Init(block, bytes, capacity, info.dimensions, info.metric, params,
			                               sizeof(S5vBuildRow));
		});
	}
	shm_toc_insert(pcxt->toc, kKeyShared, shared);
	shm_toc_insert(pcxt->toc, kKeyGraph, graph_chunk);
	if (debug_query_string) {
		char *sharedquery = (char *)shm_toc_allocate(pcxt->toc, querylen + 1);
		memcpy(sharedquery, debug_query_string, querylen + 1);
		shm_toc_insert(pcxt->toc, kKeyQueryText, sharedquery);
	}
	WalUsage *walusage = (WalUsage *)shm_toc_allocate(pcxt->toc, mul_size(sizeof(WalUsage), pcxt->nworkers));
	shm_toc_insert(pcxt->toc, kKeyWalUsage, walusage);
	BufferUsage *bufferusage =
	    (BufferUsage *)shm_toc_allocate(pcxt->toc, mul_size(sizeof(BufferUsage), pcxt->nworkers));
	shm_toc_insert(pcxt->toc, kKeyBufferUsage, bufferusage);

	LaunchParallelWorkers(pcxt);
	if (pcxt->nworkers_launched == 0) {
		WaitForParallelWorkersToFinish(pcxt);
		if (IsMVCCSnapshot(snapshot))
			UnregisterSnapshot(snapshot);
		DestroyParallelContext(pcxt);
		ExitParallelMode();
		ereport(DEBUG1, (errmsg("s5vector: building serially: no parallel worker could be launched")));
		return NULL;
	}
	ereport(DEBUG1, (errmsg("s5vector: parallel build with %d of %d planned workers, capacity %.0f rows",
	                        pcxt->nworkers_launched, request, cap)));

	ParallelBuild *pb = (ParallelBuild *)palloc0(sizeof(ParallelBuild));
	pb->pcxt = pcxt;
	pb->snapshot = snapshot;
	pb->shared = shared;
	pb->graph_chunk = graph_chunk;
	pb->nparticipants = pcxt->nworkers_launched + (parallel_leader_participation ? 1 : 0);
	pb->walusage = walusage;
	pb->bufferusage = bufferusage;
	pb->heap = heap;
	pb->index = index;
	return pb;
}

bool ParallelBuildScan(ParallelBuild *pb, double *heap_tuples, double *index_tuples) {
	S5vParallelShared *shared = pb->shared;
	if (parallel_leader_participation)
		ParticipateInScan(shared, pb->graph_chunk, pb->heap, pb->index, true);
	// A worker that failed to start must not leave the leader waiting for it.
	WaitForParallelWorkersToAttach(pb->pcxt);
	for (;;) {
		SpinLockAcquire(&shared->mutex);
		int done = shared->nparticipantsdone;
		SpinLockRelease(&shared->mutex);
		pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64)pg_atomic_read_u64(&shared->tuples_done));
		if (done >= pb->nparticipants)
			break;
		ConditionVariableTimedSleep(&shared->workersdonecv, 100, WAIT_EVENT_PARALLEL_CREATE_INDEX_SCAN);
	}
	ConditionVariableCancelSleep();
	WaitForParallelWorkersToFinish(pb->pcxt);
	for (int i = 0; i < pb->pcxt->nworkers_launched; i++)
		InstrAccumParallelQuery(&pb->bufferusage[i], &pb->walusage[i]);
	*heap_tuples = shared->heap_tuples;
	*index_tuples = shared->index_tuples;

	pb->cxt = AllocSetContextCreate(CurrentMemoryContext, "s5vector parallel build leader", ALLOCSET_SMALL_SIZES);
	MemoryContextCallback *cb = (MemoryContextCallback *)MemoryContextAlloc(pb->cxt, sizeof(MemoryContextCallback));
	cb->func = DeleteLeaderGraph;
	cb->arg = &pb->leader_graph;
	MemoryContextRegisterResetCallback(pb->cxt, cb);
	void *block = GraphBlock(pb->graph_chunk);
	Size bytes = shared->graph_bytes;
	Guarded([&]() -> Status {
		pb->leader_graph = new hnsw::SharedGraph(block, bytes);
		return pb->leader_graph->status();
	});
	if (pb->leader_graph->full()) {
		ereport(NOTICE,
		        (errmsg("s5vector: the table has more rows than the parallel build's shared graph was sized for "
		                "(%zu), building serially",
		                pb->leader_graph->capacity()),
		         errhint("ANALYZE the table before CREATE INDEX for a better estimate.")));
		return false;
	}
	return true;
}

hnsw::SharedGraph &ParallelBuildGraph(ParallelBuild *pb) {
	return *pb->leader_graph;
}

void ParallelBuildEnd(ParallelBuild *pb) {
	if (pb->cxt != NULL)
		MemoryContextDelete(pb->cxt); // the leader's view goes before the segment
	pb->cxt = NULL;
	if (IsMVCCSnapshot(pb->snapshot))
		UnregisterSnapshot(pb->snapshot);
	DestroyParallelContext(pb->pcxt);
	ExitParallelMode();
	pfree(pb);
}

} // namespace s5v::pg

// A parallel worker: open the relations with the lock modes the leader holds, take part in the scan, hand back the
// buffer and WAL usage.
void s5v_parallel_build_main(dsm_segment *seg, shm_toc *toc) {
	char *sharedquery = (char *)shm_toc_lookup(toc, s5v::pg::kKeyQueryText, true);
	debug_query_string = sharedquery;
	pgstat_report_activity(STATE_RUNNING, debug_query_string);

	s5v::pg::S5vParallelShared *shared = (s5v::pg::S5vParallelShared *)shm_toc_lookup(toc, s5v::pg::kKeyShared, false);
	void *graph_chunk = shm_toc_lookup(toc, s5v::pg::kKeyGraph, false);
	LOCKMODE heapLockmode = shared->isconcurrent ? ShareUpdateExclusiveLock : ShareLock;
	LOCKMODE indexLockmode = shared->isconcurrent ? RowExclusiveLock : AccessExclusiveLock;
	Relation heap = table_open(shared->heaprelid, heapLockmode);
	Relation index = index_open(shared->indexrelid, indexLockmode);

	InstrStartParallelQuery();
	s5v::pg::ParticipateInScan(shared, graph_chunk, heap, index, false);
	BufferUsage *bufferusage = (BufferUsage *)shm_toc_lookup(toc, s5v::pg::kKeyBufferUsage, false);
	WalUsage *walusage = (WalUsage *)shm_toc_lookup(toc, s5v::pg::kKeyWalUsage, false);
	InstrEndParallelQuery(&bufferusage[ParallelWorkerNumber], &walusage[ParallelWorkerNumber]);

	index_close(index, indexLockmode);
	table_close(heap, heapLockmode);
}
