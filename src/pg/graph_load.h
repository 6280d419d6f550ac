// The whole hot graph read into plain arrays: for s5vector_verify and for VACUUM's connectivity repair.
#pragma once

#include "core/hnsw.h"
#include "pg/index.h"
#include "pg/page_iter.h"

#include <vector>

namespace s5v::pg {

// One element as read from its pages.
struct LoadedElement {
	uint64 id;
	ItemPointerData heaptid;
	uint8 level;
	uint8 flags;
	int nlinks;
	uint64 *links;     // node ids of its neighbours, level 0 first
	int8 *link_levels; // the level of each link
};

struct LoadedGraph {
	LoadedElement *elements;
	int64 count;
	int64 bad_pages;               // pages whose header is not ours
	int64 missing_neighbor_tuples; // elements whose neighbour tuple is missing or the wrong size
};

// Read every element and its links through the page iterator (plain code, may ereport; palloc'd in the current
// context). With `iter`, the caller's iterator is used, so its counts (pages, new and bad pages) stay readable
// after the call; with `nonfinite_vectors`, elements with a NaN or infinite component are counted.
void LoadGraph(Relation index, const IndexInfoCache &info, BufferAccessStrategy strategy, LoadedGraph *out,
               S5vPageIter *iter = nullptr, int64 *nonfinite_vectors = nullptr);

// The graph in the compact form of hnsw::FindUnreachable: node i is graph.elements[i] (ids[i] its node id);
// live[i] is 0 for deleted elements; entry_index is UINT32_MAX when `entry` is not among them.
struct GraphCsr {
	std::vector<uint32_t> offsets;
	std::vector<uint32_t> targets;
	std::vector<uint8_t> live;
	std::vector<hnsw::NodeId> ids;
	uint32_t entry_index;
};
Status BuildCsr(const LoadedGraph &graph, uint64 entry, GraphCsr &out);

// Live (not deleted) elements that cannot be reached from `entry` by following links (C++: call inside Guarded).
Status UnreachableElements(const LoadedGraph &graph, uint64 entry, std::vector<uint64> &out);

} // namespace s5v::pg
