// CREATE INDEX: the graph is built in memory (up to maintenance_work_mem) by the core, then written to pages in
// one pass and WAL-logged once (log_newpage_range). Past the memory limit, the rest is inserted on disk.
// With parallel workers (parallel_build.h) the graph is built in shared memory by every participant at once, then
// written by the leader with the same code (the page writer is templated over the graph it reads).
extern "C" {
#include "postgres.h"

#include "access/generic_xlog.h"
#include "access/tableam.h"
#include "access/xloginsert.h"
#include "catalog/index.h"
#include "commands/progress.h"
#include "common/pg_prng.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/rel.h"
}

#include "pg/am.h"
#include "pg/blob_ledger.h"
#include "pg/cold_build.h"
#include "pg/guard.h"
#include "pg/index.h"
#include "pg/page_store.h"
#include "pg/parallel_build.h"
#include "pg/s5vector.h"

#include <vector>

namespace s5v::pg {

namespace {

// C++ state of a build; owned by the build memory context (deleted by its reset callback on success or error).
struct BuildObjects {
	hnsw::InMemoryGraph graph;
	std::vector<ItemPointerData> tids;
	std::vector<int64> ages;
	std::vector<uint8> flags;
	PageGraphStore *store = nullptr; // after the graph went to disk
	InterruptToken cancel;

	BuildObjects(std::size_t dim, s5v::Metric metric, const hnsw::Params &p) : graph(dim, metric, p) {}
	~BuildObjects() { delete store; }
};

// Plain data only: PostgreSQL errors may jump over frames that hold it.
struct BuildState {
	Relation heap;
	Relation index;
	IndexInfoCache info;
	BuildObjects *objects;
	MemoryContext tmpcxt;
	float *vec;
	double heap_tuples;
	double index_tuples;
	Size memory_limit;
	bool on_disk;
	pg_prng_state prng;          // levels: seeded with a constant, so a build of the same rows gives the same graph
	struct ColdBuildState *cold; // cold tier (cold_build.h): NULL when every row is hot
};

void DeleteBuildObjects(void *arg) {
	BuildObjects **objs = (BuildObjects **)arg;
	delete *objs;
	*objs = nullptr;
}

int DrawLevel(BuildState *bs) {
	int level = hnsw::RandomLevel(bs->info.m, pg_prng_uint64(&bs->prng));
	return Min(level, bs->info.max_level);
}

// What the page writer reads of a built graph: the serial build's InMemoryGraph with its row arrays, or the
// parallel build's SharedGraph, whose nodes carry their rows (S5vBuildRow).
struct SerialGraph {
	hnsw::InMemoryGraph &g;
	BuildObjects *o;
	size_t size() const { return g.size(); }
	int level(size_t i) const { return g.level(i); }
	const float *vector(size_t i) const { return g.vector_data(i); }
	std::span<const uint32_t> neighbors(size_t i, int l) const { return g.neighbor_ids(i, l); }
	ItemPointerData tid(size_t i) const { return o->tids[i]; }
	int64 age(size_t i) const { return o->ages[i]; }
	uint8 flags(size_t i) const { return o->flags[i]; }
	bool entry(hnsw::NodeId &node, int &level) const { return g.EntryPoint(node, level).ok(); }
};

struct ParallelGraph {
	hnsw::SharedGraph &g;
	size_t size() const { return g.size(); }
	int level(size_t i) const { return g.level(i); }
	const float *vector(size_t i) const { return g.vector_data(i); }
	std::span<const uint32_t> neighbors(size_t i, int l) const { return g.neighbor_ids(i, l); }
	const S5vBuildRow *row(size_t i) const { return (const S5vBuildRow *)g.payload(i); }
	ItemPointerData tid(size_t i) const { return row(i)->tid; }
	int64 age(size_t i) const { return row(i)->age; }
	uint8 flags(size_t i) const { return row(i)->flags; }
	bool entry(hnsw::NodeId &node, int &level) const { return g.EntryPoint(node, level).ok(); }
};

// Where each in-memory node goes: element and neighbour tuple on the same page when they fit together.
struct Placement {
	BlockNumber eblk;
	OffsetNumber eoff;
	BlockNumber nblk;
	OffsetNumber noff;
};

// Write the in-memory graph to pages 1..n (block 0, the metapage, exists), without WAL; the caller logs them.
template <class Graph> void WriteGraph(BuildState *bs, const Graph &graph, const Placement *place, BlockNumber npages) {
	uint32 dim = bs->info.dimensions;
	int m = bs->info.m;
	size_t n = graph.size();
	Size esize = S5V_ELEMENT_SIZE(dim);
	S5vElementTuple etup = (S5vElementTuple)palloc0(esize);
	S5vNeighborTuple ntup = (S5vNeighborTuple)palloc0(S5V_NEIGHBOR_SIZE(m, bs->info.max_level));
	PGAlignedBlock pagebufs[2];
	size_t next = 0;
	BlockNumber first = RelationGetNumberOfBlocks(bs->index);
	for (BlockNumber b = 0; b < npages; b++) {
		BlockNumber blk = first + b;
		Page page = (Page)pagebufs[0].data;
		InitPage(page, S5V_PAGE_HOT);
		// Add every tuple placed on this block, in node order (offsets were assigned in that order).
		for (size_t i = next; i < n; i++) {
			if (place[i].eblk > blk && place[i].nblk > blk)
				break;
			int level = graph.level(i);
			if (place[i].eblk == blk) {
				memset(etup, 0, esize);
				etup->type = S5V_TUPLE_ELEMENT;
				etup->version = S5V_TUPLE_VERSION;
				etup->level = (uint8)level;
				etup->flags = graph.flags(i);
				etup->heaptid = graph.tid(i);
				ItemPointerSet(&etup->neighbortid, place[i].nblk, place[i].noff);
				etup->age = graph.age(i);
				memcpy(etup->x, graph.vector(i), sizeof(float) * dim);
				if (PageAddItem(page, (Item)etup, esize, InvalidOffsetNumber, false, false) != place[i].eoff)
					elog(ERROR, "s5vector: failed to place element %zu", i);
			}
			if (place[i].nblk == blk) {
				Size nsize = S5V_NEIGHBOR_SIZE(m, level);
				memset(ntup, 0, nsize);
				ntup->type = S5V_TUPLE_NEIGHBORS;
				ntup->version = S5V_TUPLE_VERSION;
				ntup->count = (uint16)S5V_NEIGHBOR_SLOTS(m, level);
				for (int s = 0; s < ntup->count; s++)
					ItemPointerSetInvalid(&ntup->tids[s]);
				for (int l = 0; l <= level; l++) {
					std::span<const uint32_t> nb = graph.neighbors(i, l);
					int start = l == 0 ? 0 : 2 * m + (l - 1) * m;
					int cap = l == 0 ? 2 * m : m;
					int k = 0;
					for (uint32_t id : nb) {
						if (k >= cap)
							break;
						ItemPointerSet(&ntup->tids[start + k], place[id].eblk, place[id].eoff);
						k++;
					}
				}
				if (PageAddItem(page, (Item)ntup, nsize, InvalidOffsetNumber, false, false) != place[i].noff)
					elog(ERROR, "s5vector: failed to place neighbours of element %zu", i);
			}
			if (place[i].eblk <= blk && place[i].nblk <= blk)
				next = i + 1;
		}
		Buffer buf = ReadBufferExtended(bs->index, MAIN_FORKNUM, P_NEW, RBM_NORMAL, NULL);
		if (BufferGetBlockNumber(buf) != blk)
			elog(ERROR, "s5vector: unexpected block %u while writing block %u", BufferGetBlockNumber(buf), blk);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		memcpy(BufferGetPage(buf), page, BLCKSZ);
		MarkBufferDirty(buf);
		UnlockReleaseBuffer(buf);
		CHECK_FOR_INTERRUPTS();
	}
	pfree(etup);
	pfree(ntup);
}

// Assign pages and offsets to every node; returns the number of pages.
template <class Graph> BlockNumber PlaceGraph(BuildState *bs, const Graph &graph, Placement *place) {
	uint32 dim = bs->info.dimensions;
	int m = bs->info.m;
	Size esize = S5V_ELEMENT_SIZE(dim) + sizeof(ItemIdData);
	BlockNumber first = RelationGetNumberOfBlocks(bs->index);
	BlockNumber cur = first;
	Size free_space = S5V_PAGE_FREE_SPACE + 2 * sizeof(ItemIdData);
	const Size empty = free_space;
	OffsetNumber off = FirstOffsetNumber;
	for (size_t i = 0; i < graph.size(); i++) {
		Size nsize = S5V_NEIGHBOR_SIZE(m, graph.level(i)) + sizeof(ItemIdData);
		if (esize + nsize <= empty) {
			if (esize + nsize > free_space) {
				cur++;
				free_space = empty;
				off = FirstOffsetNumber;
			}
			place[i] = {cur, off, cur, (OffsetNumber)(off + 1)};
			off += 2;
			free_space -= esize + nsize;
		} else {
			if (esize > free_space) {
				cur++;
				free_space = empty;
				off = FirstOffsetNumber;
			}
			place[i].eblk = cur;
			place[i].eoff = off;
			cur++;
			free_space = empty - nsize;
			place[i].nblk = cur;
			place[i].noff = FirstOffsetNumber;
			off = FirstOffsetNumber + 1;
		}
	}
	return graph.size() == 0 ? 0 : cur - first + 1;
}

void WriteMetaPage(Relation index, const BuildState *bs, ForkNumber fork) {
	Buffer buf = ReadBufferExtended(index, fork, P_NEW, RBM_NORMAL, NULL);
	if (BufferGetBlockNumber(buf) != S5V_METAPAGE_BLKNO)
		elog(ERROR, "s5vector: metapage is not block 0");
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	Page page = BufferGetPage(buf);
	InitPage(page, S5V_PAGE_META);
	S5vMetaPage meta = S5vPageGetMeta(page);
	memset(meta, 0, sizeof(S5vMetaPageData));
	meta->magic = S5V_MAGIC;
	meta->version = S5V_FORMAT_VERSION;
	meta->dimensions = bs->info.dimensions;
	meta->metric = (uint8)bs->info.metric;
	meta->age_kind = bs->info.age_kind;
	meta->m = (uint16)bs->info.m;
	meta->ef_construction = (uint16)bs->info.ef_construction;
	meta->max_level = (uint16)bs->info.max_level;
	meta->lists = OptionLists(index);
	OptionHotWindow(index, &meta->hot_window, &meta->hot_window_infinite);
	meta->entry_blkno = InvalidBlockNumber;
	meta->entry_offno = InvalidOffsetNumber;
	meta->entry_level = -1;
	meta->insert_page = InvalidBlockNumber;
	meta->cold_metapage = InvalidBlockNumber;
	if (!pg_strong_random(meta->index_id, sizeof(meta->index_id)))
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not generate a random index id")));
	meta->worker.gc_queue_head = InvalidBlockNumber;
	meta->worker.migration_cursor = InvalidBlockNumber;
	((PageHeader)page)->pd_lower = ((char *)meta + sizeof(S5vMetaPageData)) - (char *)page;
	MarkBufferDirty(buf);
	if (fork == INIT_FORKNUM)
		log_newpage_buffer(buf, true);
	UnlockReleaseBuffer(buf);
}

// Move the in-memory graph to pages and point the metapage at it.
template <class Graph> void FlushGraph(BuildState *bs, const Graph &graph) {
	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, S5V_PHASE_WRITE);
	size_t n = graph.size();
	Placement *place = n > 0 ? (Placement *)palloc_extended(sizeof(Placement) * n, MCXT_ALLOC_HUGE) : nullptr;
	BlockNumber npages = n > 0 ? PlaceGraph(bs, graph, place) : 0;
	WriteGraph(bs, graph, place, npages);

	Buffer buf = ReadBuffer(bs->index, S5V_METAPAGE_BLKNO);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	S5vMetaPage meta = S5vPageGetMeta(BufferGetPage(buf));
	hnsw::NodeId entry = hnsw::kNoNode;
	int level = -1;
	if (!graph.entry(entry, level))
		entry = hnsw::kNoNode;
	if (entry != hnsw::kNoNode) {
		meta->entry_blkno = place[entry].eblk;
		meta->entry_offno = place[entry].eoff;
		meta->entry_level = (int16)level;
		meta->insert_page = place[n - 1].nblk;
	}
	meta->hot_elements = (int64)n;
	MarkBufferDirty(buf);
	UnlockReleaseBuffer(buf);
	if (place)
		pfree(place);
}

void BuildCallback(Relation index, ItemPointer tid, Datum *values, bool *isnull, bool tupleIsAlive, void *state) {
	BuildState *bs = (BuildState *)state;
	bs->heap_tuples++;
	if (isnull[0])
		return;
	MemoryContext old = MemoryContextSwitchTo(bs->tmpcxt);
	uint8 flags = 0;
	int64 age = RowAge(bs->info, values, isnull, &flags);
	// Cold tier hook: a row older than the window is counted here, and its vector read (detoasted, checked) only
	// when the sample takes it; ColdBuildFinish's second scan reads, checks and writes every cold row.
	if (ColdBuildWantsRow(bs->cold, age, flags)) {
		ColdBuildOffer(bs->cold, values[0]);
		MemoryContextSwitchTo(old);
		MemoryContextReset(bs->tmpcxt);
		return;
	}
	bool prepared = PrepareVector(bs->info, values[0], bs->vec);
	CheckBuildVector(bs->info, values[0], bs->vec, prepared);
	if (prepared) {
		int level = DrawLevel(bs);
		BuildObjects *objs = bs->objects;
		// The graph's half-precision build copies (vectors of 256+ dimensions) go first: dropped, the build goes on
		// in memory with float distances, which is much faster than on pages.
		if (!bs->on_disk && objs->graph.build_copy_bytes() > 0 &&
		    objs->graph.memory_bytes() + objs->tids.capacity() * 16 > bs->memory_limit)
			objs->graph.DropBuildCopies();
		if (!bs->on_disk && objs->graph.memory_bytes() + objs->tids.capacity() * 16 > bs->memory_limit) {
			ereport(NOTICE, (errmsg("s5vector graph no longer fits into maintenance_work_mem after %.0f tuples",
			                        bs->index_tuples),
			                 errdetail("Building will take significantly more time."),
			                 errhint("Increase maintenance_work_mem to speed up builds.")));
			FlushGraph(bs, SerialGraph{objs->graph, objs});
			bs->on_disk = true;
		}
		float *vec = bs->vec;
		ItemPointerData heaptid = *tid;
		if (!bs->on_disk) {
			Guarded([&]() -> Status {
				hnsw::NodeId id = objs->graph.Add(vec, level);
				objs->tids.push_back(heaptid);
				objs->ages.push_back(age);
				objs->flags.push_back(flags);
				hnsw::Params params{bs->info.m, bs->info.ef_construction};
				return hnsw::Insert(objs->graph, id, level, vec, bs->info.dimensions, params, objs->cancel);
			});
		} else {
			Guarded([&]() -> Status {
				if (objs->store == nullptr)
					objs->store = new PageGraphStore(bs->index, bs->info);
				hnsw::NodeId id;
				S5V_RETURN_IF_ERROR(objs->store->AddElement(&heaptid, age, flags, vec, level, id));
				hnsw::Params params{bs->info.m, bs->info.ef_construction};
				return hnsw::Insert(*objs->store, id, level, vec, bs->info.dimensions, params, objs->cancel);
			});
		}
		bs->index_tuples++;
		if ((uint64)bs->index_tuples % 1000 == 0)
			pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64)bs->index_tuples);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(bs->tmpcxt);
}

// Frozen settings for a new index, checked against the column and the options.
void InitBuildInfo(Relation index, IndexInfoCache *info) {
	CheckIndexColumns(index);
	Form_pg_attribute attr = TupleDescAttr(RelationGetDescr(index), 0);
	int dims = attr->atttypmod;
	if (dims < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("column does not have dimensions")));
	if (dims > S5V_MAX_DIM)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
		                errmsg("column cannot have more than %d dimensions for s5vector index", S5V_MAX_DIM)));
	info->dimensions = (uint32)dims;
	info->metric = MetricOfIndex(index);
	info->age_kind = AgeKindOfIndex(index);
	info->m = OptionM(index);
	info->ef_construction = OptionEfConstruction(index);
	if (info->ef_construction < 2 * info->m)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("ef_construction must be greater than or equal to 2 * m")));
	info->max_level = MaxLevelForM(info->m);
}

// Give every node the build left without in-links back-links (Repair), a few rounds, then force links for what
// is left; all in memory.
template <class Graph> Status ReconnectInMemory(Graph &graph, const hnsw::Params &params, const CancelToken &cancel) {
	for (int round = 0; round < 4; round++) {
		std::size_t n = graph.size();
		hnsw::NodeId entry;
		int entry_level;
		S5V_RETURN_IF_ERROR(graph.EntryPoint(entry, entry_level));
		if (n == 0 || entry == hnsw::kNoNode)
			return Status::Ok();
		std::vector<uint32_t> offsets(n + 1), targets;
		std::vector<uint8_t> live(n, 1);
		for (std::size_t i = 0; i < n; i++) {
			offsets[i] = (uint32_t)targets.size();
			for (int l = 0; l <= graph.level(i); l++)
				for (uint32_t t : graph.neighbor_ids(i, l))
					targets.push_back(t);
		}
		offsets[n] = (uint32_t)targets.size();
		std::vector<uint32_t> lost;
		S5V_RETURN_IF_ERROR(hnsw::FindUnreachable(offsets, targets, (uint32_t)entry, live, lost));
		if (lost.empty())
			return Status::Ok();
		if (round == 3) {
			std::vector<hnsw::NodeId> ids(n);
			for (std::size_t i = 0; i < n; i++)
				ids[i] = i;
			return hnsw::ForceLinks(graph, params, offsets, targets, ids, (uint32_t)entry, lost);
		}
		for (uint32_t id : lost)
			S5V_RETURN_IF_ERROR(
			    hnsw::Repair(graph, id, graph.level(id), graph.vector_data(id), graph.dim(), params, cancel));
	}
	return Status::Ok();
}

} // namespace

IndexBuildResult *Build(Relation heap, Relation index, IndexInfo *indexInfo) {
	if (RelationGetNumberOfBlocks(index) != 0)
		elog(ERROR, "index \"%s\" already contains data", RelationGetRelationName(index));
	// A rebuild (REINDEX, TRUNCATE, CLUSTER, ...): the old storage's blobs go to the ledger first.
	TrackRebuiltIndexBlobs(index);

	BuildState *bs = (BuildState *)palloc0(sizeof(BuildState));
	bs->heap = heap;
	bs->index = index;
	InitBuildInfo(index, &bs->info);
	bs->memory_limit = (Size)maintenance_work_mem * 1024L;
	pg_prng_seed(&bs->prng, UINT64CONST(0x5355564543544f52));
	bs->vec = (float *)palloc(sizeof(float) * bs->info.dimensions);
	bs->tmpcxt =
	    AllocSetContextCreate(CurrentMemoryContext, "s5vector build temporary context", ALLOCSET_DEFAULT_SIZES);

	// The C++ objects are freed by a callback of this context, whether the build ends normally or by error.
	MemoryContext buildcxt = AllocSetContextCreate(CurrentMemoryContext, "s5vector build", ALLOCSET_SMALL_SIZES);
	MemoryContextCallback *cb = (MemoryContextCallback *)MemoryContextAlloc(buildcxt, sizeof(MemoryContextCallback));
	cb->func = DeleteBuildObjects;
	cb->arg = &bs->objects;
	MemoryContextRegisterResetCallback(buildcxt, cb);
	Guarded([&]() -> Status {
		hnsw::Params params{bs->info.m, bs->info.ef_construction};
		bs->objects = new BuildObjects(bs->info.dimensions, bs->info.metric, params);
		return Status::Ok();
	});

	WriteMetaPage(index, bs, MAIN_FORKNUM);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, S5V_PHASE_LOAD);
	{
		Interval window;
		bool infinite;
		OptionHotWindow(index, &window, &infinite);
		bs->cold = ColdBuildBegin(index, bs->info, OptionLists(index), window, infinite, bs->memory_limit);
	}
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL, (int64)Max(heap->rd_rel->reltuples, 0));
	// Parallel workers when the planner gives some and the graph fits (parallel_build.h); the leader writes the
	// pages from the shared graph while the segment is still mapped, then leaves parallel mode.
	bool built = false;
	if (ParallelBuild *pb = ParallelBuildBegin(heap, index, indexInfo, bs->info, bs->memory_limit, bs->cold != NULL)) {
		double heap_tuples = 0, index_tuples = 0;
		if (ParallelBuildScan(pb, &heap_tuples, &index_tuples)) {
			hnsw::SharedGraph &graph = ParallelBuildGraph(pb);
			BuildObjects *objs = bs->objects;
			Guarded([&]() -> Status {
				hnsw::Params params{bs->info.m, bs->info.ef_construction};
				return ReconnectInMemory(graph, params, objs->cancel);
			});
			FlushGraph(bs, ParallelGraph{graph});
			bs->heap_tuples = heap_tuples;
			bs->index_tuples = index_tuples;
			built = true;
		}
		ParallelBuildEnd(pb);
	}
	if (!built) {
		pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, 0);
		bs->heap_tuples = table_index_build_scan(heap, index, indexInfo, true, true, BuildCallback, (void *)bs, NULL);
		if (!bs->on_disk) {
			BuildObjects *objs = bs->objects;
			Guarded([&]() -> Status {
				hnsw::Params params{bs->info.m, bs->info.ef_construction};
				return ReconnectInMemory(objs->graph, params, objs->cancel);
			});
			FlushGraph(bs, SerialGraph{objs->graph, objs});
		} else {
			// Counters of the on-disk part were kept by AddElement.
		}
	}

	// Cold tier hook: lists, training and the cold rows' pages, after the graph's.
	bs->index_tuples += ColdBuildFinish(bs->cold, heap, index, indexInfo);

	if (RelationNeedsWAL(index))
		log_newpage_range(index, MAIN_FORKNUM, 0, RelationGetNumberOfBlocks(index), true);

	IndexBuildResult *result = (IndexBuildResult *)palloc(sizeof(IndexBuildResult));
	result->heap_tuples = bs->heap_tuples;
	result->index_tuples = bs->index_tuples;
	MemoryContextDelete(buildcxt);
	MemoryContextDelete(bs->tmpcxt);
	return result;
}

void BuildEmpty(Relation index) {
	BuildState bs;
	memset(&bs, 0, sizeof(bs));
	bs.index = index;
	InitBuildInfo(index, &bs.info);
	WriteMetaPage(index, &bs, INIT_FORKNUM);
}

} // namespace s5v::pg
