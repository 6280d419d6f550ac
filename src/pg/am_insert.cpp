// INSERT into the index: the element is appended to a page, then linked into the graph by the core.
// Concurrency: inserts hold the graph lock (a heavyweight lock on a page number that is no real page) in share
// mode and run in parallel; every list change is an atomic read-modify-write under the neighbour page's exclusive
// buffer lock (PageGraphStore::CompareAndSetNeighbors). Only an insert that will change the entry point (the graph
// is empty or its level is above the entry point's) takes the lock exclusively, as VACUUM does briefly. Scans
// take no graph lock.
extern "C" {
#include "postgres.h"

#include "common/pg_prng.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
}

#include "pg/am.h"
#include "pg/cold_build.h"
#include "pg/guard.h"
#include "pg/index.h"
#include "pg/page_store.h"

namespace s5v::pg {

namespace {
// Vectors one insert keeps in memory (about 1.5 MB are read at 128 dimensions, m = 16, ef_construction = 64).
constexpr std::size_t kInsertVectorCacheBytes = 16 * 1024 * 1024;
} // namespace

bool Insert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid, Relation heap,
            IndexUniqueCheck checkUnique, bool indexUnchanged, IndexInfo *indexInfo) {
	if (isnull[0])
		return false;
	IndexInfoCache info = GetIndexInfo(index);
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "s5vector insert", ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	float *vec = (float *)palloc(sizeof(float) * info.dimensions);
	if (PrepareVector(info, values[0], vec)) {
		uint8 flags = 0;
		int64 age = RowAge(info, values, isnull, &flags);
		// Cold tier hook: a row already older than the window goes to its list, not to the graph.
		if (ColdInsertIfOld(index, info, heap_tid, age, flags, vec)) {
			MemoryContextSwitchTo(old);
			MemoryContextDelete(cxt);
			return false;
		}
		int level = Min(hnsw::RandomLevel(info.m, pg_prng_uint64(&pg_global_prng_state)), info.max_level);
		ItemPointerData tid = *heap_tid;
		LOCKMODE mode = ShareLock;
		LockPage(index, S5V_GRAPH_WRITE_LOCK, mode);
		S5vMetaPageData meta;
		ReadMetaPage(index, &meta);
		if (meta.entry_blkno == InvalidBlockNumber || level > meta.entry_level) {
			// This insert will change the entry point: no other writer may run meanwhile (share cannot be upgraded
			// in place without risking a deadlock between two upgraders, so release and wait).
			UnlockPage(index, S5V_GRAPH_WRITE_LOCK, mode);
			mode = ExclusiveLock;
			LockPage(index, S5V_GRAPH_WRITE_LOCK, mode);
		}
		Guarded([&]() -> Status {
			PageGraphStore store(index, info);
			// Neighbour selection computes distances among the candidates the search read: keep their vectors.
			store.EnableVectorCache(kInsertVectorCacheBytes);
			InterruptToken cancel;
			hnsw::NodeId id;
			S5V_RETURN_IF_ERROR(store.AddElement(&tid, age, flags, vec, level, id));
			hnsw::Params params{info.m, info.ef_construction};
			return hnsw::Insert(store, id, level, vec, info.dimensions, params, cancel);
		});
		UnlockPage(index, S5V_GRAPH_WRITE_LOCK, mode);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return false;
}

} // namespace s5v::pg
