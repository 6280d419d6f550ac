// The hot tier's graph over index pages: implements the core's hnsw::MutableGraphStore with buffers and
// Generic WAL. Every PostgreSQL call runs inside S5V_PG_CALL, so an error becomes Status::External and is
// re-thrown by Guarded() at the edge.
#pragma once

#include "core/hnsw.h"
#include "pg/index.h"

#include <unordered_map>
#include <vector>

namespace s5v::pg {

// A closed or half-open range on the age key (int64 microseconds), from the scan keys on the age column.
struct AgeFilter {
	bool active = false;
	bool impossible = false; // e.g. a NULL comparison value: nothing matches
	int64 lo = PG_INT64_MIN;
	bool lo_inclusive = true;
	int64 hi = PG_INT64_MAX;
	bool hi_inclusive = true;

	bool Matches(int64 age, uint8 flags) const {
		if (!active)
			return true;
		if (impossible || (flags & S5V_ELEMENT_AGE_NULL))
			return false;
		if (lo_inclusive ? age < lo : age <= lo)
			return false;
		if (hi_inclusive ? age > hi : age >= hi)
			return false;
		return true;
	}
};

// Raise ERRCODE_INDEX_CORRUPTED unless `blk` is a data page of the index (not the metapage, below the index's
// size: P_NEW / InvalidBlockNumber would make a read extend the file). *nblocks caches the size and is refreshed
// before failing. `what` names the TID's role in the message.
void CheckIndexBlock(Relation index, BlockNumber blk, BlockNumber *nblocks, const char *what);
// Raise ERRCODE_INDEX_CORRUPTED unless `tid` can be a row of the index's table: offset in 1..MaxHeapTuplesPerPage,
// block below the table's size (*heap_nblocks caches it, 0 = unknown). For every heap TID given to the executor.
void CheckHeapTid(Relation index, const ItemPointerData *tid, BlockNumber *heap_nblocks);

class PageGraphStore final : public hnsw::MutableGraphStore {
public:
	PageGraphStore(Relation index, const IndexInfoCache &info);

	void SetAgeFilter(const AgeFilter &filter) { filter_ = filter; }

	// Keep a copy of the vectors this store reads (at most max_bytes of them; when full it starts over), so that
	// the distances among the same elements that neighbour selection computes again and again read no page again.
	// For stores that change the graph (an insert, VACUUM's repairs): an element's vector never changes while it
	// exists (VACUUM removes elements only after the inserts in flight and after its own repairs), and its flags
	// are taken as first read.
	void EnableVectorCache(std::size_t max_bytes);
	// Forget the kept vectors (a store that runs many repairs calls this before each: flags stay as fresh as an
	// insert's).
	void ResetVectorCache() {
		vcache_.clear();
		vgen_++;
	}

	Status EntryPoint(hnsw::NodeId &node, int &level) override;
	Status Distances(const float *query, std::span<const hnsw::NodeId> nodes, std::span<float> out,
	                 std::span<std::uint8_t> pass) override;
	Status Neighbors(hnsw::NodeId node, int level, std::vector<hnsw::NodeId> &out) override;
	Status Vector(hnsw::NodeId node, std::vector<float> &out) override;
	Status SetNeighbors(hnsw::NodeId node, int level, std::span<const hnsw::NodeId> neighbors) override;
	Status SetEntryPoint(hnsw::NodeId node, int level) override;
	Status CompareAndSetNeighbors(hnsw::NodeId node, int level, std::span<const hnsw::NodeId> expected,
	                              std::span<const hnsw::NodeId> desired, bool &applied) override;

	// Append a new element (and its empty neighbour tuple) to the index; WAL-logged.
	Status AddElement(ItemPointer heaptid, int64 age, uint8 flags, const float *vec, int level, hnsw::NodeId &out);
	// Heap TID of an element seen by Distances() (false if it was not seen or is not returnable).
	bool HeapTid(hnsw::NodeId node, ItemPointerData &out) const;

	// What the store remembers of an element it has read.
	struct NodeMeta {
		ItemPointerData heaptid;
		ItemPointerData neighbortid;
		uint8 level;
		uint8 flags;
		bool valid;               // false when the slot holds no element (removed or reused)
		bool tid_checked = false; // heaptid was checked against the table's size when it was read
		int64 age;
		int32 vslot = -1; // its vector in vcache_ (EnableVectorCache), -1 = not kept
		uint32 vgen = 0;  // vslot is valid only while vgen_ is this (the cache starts over when full)
	};

private:
	Status Lookup(hnsw::NodeId node, NodeMeta &meta);
	Status ReadDistances(const float *query, const hnsw::NodeId *ids, std::size_t n, float *out, std::uint8_t *pass);
	int32 KeepVector(const float *vec);
	bool Kept(const NodeMeta *m) const;

	// What Distances() saw of each element, by node id: open addressing, no allocation per entry (a search
	// records one entry per distance it computes).
	class SeenMap {
	public:
		SeenMap();  // takes the backend's spare table, if any (a search would otherwise grow one from scratch)
		~SeenMap(); // leaves its table as the spare
		SeenMap(const SeenMap &) = delete;
		SeenMap &operator=(const SeenMap &) = delete;
		NodeMeta *Find(hnsw::NodeId id);
		void Put(hnsw::NodeId id, const NodeMeta &meta);
		void Erase(hnsw::NodeId id);

	private:
		void Grow();
		std::vector<hnsw::NodeId> keys_;
		std::vector<NodeMeta> values_;
		std::size_t count_ = 0;
	};

	Relation index_;
	IndexInfoCache info_;
	BlockNumber nblocks_ = 0;      // cached size of the index, for checking TIDs read from pages
	BlockNumber heap_nblocks_ = 0; // cached size of the table, for checking heap TIDs
	Status failed_;                // the first failed PostgreSQL call: no further work after it
	AgeFilter filter_;
	SeenMap seen_;
	std::vector<NodeMeta> scratch_;
	// EnableVectorCache: the kept vectors (dimensions floats each), their budget in vectors, and the misses of one
	// Distances() call.
	std::vector<float> vcache_;
	std::size_t vcache_cap_ = 0;
	uint32 vgen_ = 1;
	std::vector<float> vtmp_;
	std::vector<hnsw::NodeId> miss_ids_;
	std::vector<std::uint32_t> miss_pos_;
	std::vector<float> miss_out_;
	std::vector<std::uint8_t> miss_pass_;
};

} // namespace s5v::pg
