// HNSW graph algorithm, separated from storage (as faiss separates HNSW from its storage).
// The algorithm walks a GraphStore; the PostgreSQL glue implements it over index pages, InMemoryGraph over RAM.
// This header is the contract between src/core and src/pg: extend it, do not break it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "cancel.h"
#include "distance.h"
#include "status.h"

namespace s5v::hnsw {

namespace internal {
struct MemoryAccess; // the devirtualised fast path over InMemoryGraph (hnsw_memory.cpp)
}

// A node's identity in its store. In pages: (block << 16) | offset. In memory: a dense index.
using NodeId = std::uint64_t;
inline constexpr NodeId kNoNode = ~NodeId{0};
inline constexpr int kMaxLevel = 15; // levels are clamped to this (memory/page layout bound)

struct Params {
	int m = 16;               // neighbours per node on levels >= 1; 2 * m on level 0
	int ef_construction = 64; // candidate list size while inserting
};

inline int MaxNeighbors(const Params &p, int level) {
	return level == 0 ? 2 * p.m : p.m;
}

// Level of a new node from a uniform random 64-bit value: floor(-ln(U) / ln(m)), clamped to kMaxLevel.
int RandomLevel(int m, std::uint64_t random_bits) noexcept;

struct Candidate {
	float distance; // IndexDistance of the metric (smaller is nearer)
	NodeId node;
};

// The storage the algorithm walks. All calls may fail (a page read can raise an error in the host): the
// algorithm returns the status unchanged and leaves the store consistent.
class GraphStore {
public:
	virtual ~GraphStore() = default;

	// Current entry point and its level; node == kNoNode when the graph is empty.
	virtual Status EntryPoint(NodeId &node, int &level) = 0;

	// Index distances from `query` to each of `nodes` (computed where the vectors live, no copy).
	// If `pass` is non-empty, it is filled with 1 for nodes that may be returned as results (not deleted, inside
	// the store's current filter, e.g. an age range) and 0 for nodes that may only be walked through.
	virtual Status Distances(const float *query, std::span<const NodeId> nodes, std::span<float> out,
	                         std::span<std::uint8_t> pass) = 0;

	// The neighbours of `node` at `level` (cleared, then filled; deleted nodes may appear).
	virtual Status Neighbors(NodeId node, int level, std::vector<NodeId> &out) = 0;

	// A copy of the node's stored vector (as stored: normalised for cosine).
	virtual Status Vector(NodeId node, std::vector<float> &out) = 0;
};

class MutableGraphStore : public GraphStore {
public:
	// Replace the neighbour list of `node` at `level` (at most MaxNeighbors entries, nearest first).
	virtual Status SetNeighbors(NodeId node, int level, std::span<const NodeId> neighbors) = 0;
	virtual Status SetEntryPoint(NodeId node, int level) = 0;

	// Atomic read-modify-write of one list, for stores that several writers change at once: if the list of
	// `node` at `level` still equals `expected` (same ids, same order), replace it with `desired` and set
	// `applied`; otherwise leave it and clear `applied` (the caller re-reads and retries). The default, for
	// single-writer stores, compares with Neighbors() and calls SetNeighbors().
	virtual Status CompareAndSetNeighbors(NodeId node, int level, std::span<const NodeId> expected,
	                                      std::span<const NodeId> desired, bool &applied);
};

// Link `node` (already present in the store with its vector and `level`, with empty neighbour lists) into the
// graph: find its neighbours with ef_construction, select them with the heuristic and fill the list up to its size
// with the nearest candidates the heuristic pruned, add back-links from the heuristic's choice (pruning lists that
// overflow), and raise the entry point if `level` is above it.
// Reachability: pruning a full list drops one of its heuristically redundant entries, chosen so that the dropped
// node keeps an in-link (it is in the new node's list, or is handed over to it, or the new node itself is
// dropped when another list already holds it); a node dropped without that guarantee is re-linked (handed to a
// neighbour's list with room, else repaired) before Insert returns.
// Concurrency: every list change is a CompareAndSetNeighbors, retried on conflict, so writers that run at once
// (under a lock that only excludes entry-point changes) never lose each other's links.
Status Insert(MutableGraphStore &store, NodeId node, int level, const float *vec, std::size_t dim, const Params &params,
              const CancelToken &cancel);

// Recompute the neighbours of `node` at every level <= `level` after some of them were deleted: nodes for which
// `pass` is 0 (see Distances) are never chosen. Used by VACUUM before deleted nodes are unlinked.
Status Repair(MutableGraphStore &store, NodeId node, int level, const float *vec, std::size_t dim, const Params &params,
              const CancelToken &cancel);

// VACUUM's cheap repair, without a search (FreshDiskANN-style): on every level <= `level`, the entries of node's
// list for which `pass` is 0 are replaced by live neighbours of those entries, chosen with the heuristic against
// the live entries, which all stay (no live node loses an in-link). `sparse` is set when a list ends up less
// than half full; the caller may then run Repair.
Status RepairLocal(MutableGraphStore &store, NodeId node, int level, const float *vec, std::size_t dim,
                   const Params &params, bool &sparse);

// Give an existing node in-links again (after the only one was removed, e.g. with a deleted node): search from
// the entry point and add back-links to it from the nodes found on levels <= `level`; its own lists are not
// changed (replacing them could orphan a node only it links to).
Status Relink(MutableGraphStore &store, NodeId node, int level, const float *vec, std::size_t dim, const Params &params,
              const CancelToken &cancel);

// Graph connectivity, on a compact form the callers build from their storage (CSR: node i links to
// targets[offsets[i] .. offsets[i+1])). Fills `out` with the nodes i where live[i] != 0 that cannot be reached
// from `entry` by following links. HNSW pruning can leave a node without in-links; callers Repair such nodes
// (Repair adds back-links to them).
Status FindUnreachable(std::span<const std::uint32_t> offsets, std::span<const std::uint32_t> targets,
                       std::uint32_t entry, std::span<const std::uint8_t> live, std::vector<std::uint32_t> &out);

// Last resort for nodes that Repair could not reconnect (ties among exact duplicates): put each orphan into the
// level-0 list of its nearest reachable neighbour, appending when there is room, else replacing the entry whose
// target keeps at least one other in-link (so no new orphan appears). The graph is given as in FindUnreachable,
// with ids[i] the store's id of node i.
Status ForceLinks(MutableGraphStore &store, const Params &params, std::span<const std::uint32_t> offsets,
                  std::span<const std::uint32_t> targets, std::span<const NodeId> ids, std::uint32_t entry,
                  std::span<const std::uint32_t> orphans);

struct SearchParams {
	int ef_search = 40;         // size of the result pool of the first pass
	std::size_t max_visits = 0; // stop widening after this many distance computations (0 = no limit)
	std::size_t max_memory = 0; // stop widening once the search's buffers take this many bytes (0 = no limit)
	bool iterative = true;      // widen when the pool is exhausted
};

// A query: greedy descent to level 1, best-first search on level 0 with ef_search; results handed out in
// distance order. When the caller wants more than the pool held, the search widens from where it stopped
// (the candidates it had not expanded and the results it had discarded), so a filtered scan is not short.
// Nodes whose `pass` is 0 are walked through but never returned.
// Widening doubles the bound each round and hands out each round's new results nearest first; across rounds the
// order is only approximately global (a later round may find a node nearer than one already returned). No node
// is returned twice; iterated to the end, every node reachable from the entry point with pass = 1 is returned.
// max_visits and max_memory bound only the widening rounds (the first pass always completes); once one is reached,
// the search stops exploring, hands out the results it had found but not returned yet (nearest first), then is
// done (pgvector's meaning of hnsw.max_scan_tuples / hnsw.scan_mem_multiplier). The query is copied by Start.
// When `store` is an InMemoryGraph, a devirtualised instantiation is used (same results as the virtual path).
class Searcher {
public:
	Searcher(GraphStore &store, std::size_t dim, const CancelToken &cancel);
	~Searcher();
	Searcher(const Searcher &) = delete;
	Searcher &operator=(const Searcher &) = delete;

	Status Start(const float *query, const SearchParams &params);
	// Next result; `done` is set when the graph (or max_visits) is exhausted.
	Status Next(Candidate &out, bool &done);
	std::size_t distance_computations() const;
	std::size_t memory_bytes() const; // what the search's buffers take now (for SearchParams::max_memory)

private:
	struct State;
	State *state_;
};

// A graph held in memory (index build, unit tests). Dense node ids 0..size()-1, vectors stored contiguously.
// Vectors are stored as given: for cosine the caller normalises them (and queries) before Add/search.
// Not thread-safe. Insert/Repair given an InMemoryGraph take a devirtualised path (no allocation per insert once
// warm). Neighbour lists chosen by the heuristic are nearest first; a back-link appended to a list that still
// had room goes at its end (lists are not re-sorted, which would cost 2m distances per back-link).
class InMemoryGraph final : public MutableGraphStore {
public:
	InMemoryGraph(std::size_t dim, Metric metric, const Params &params);
	~InMemoryGraph() override;

	// Append a node (vector copied) with the given level; returns its id. Not linked yet: call Insert.
	// Returns kNoNode on bad input (null vector, level outside 0..kMaxLevel) or when memory runs out.
	NodeId Add(const float *vec, int level);
	// Add + Insert in one step, with a level drawn from `random_bits`.
	Status AddAndInsert(const float *vec, std::uint64_t random_bits, const CancelToken &cancel, NodeId &out);

	std::size_t size() const;
	std::size_t dim() const;
	int level(NodeId node) const;
	const float *vector_data(NodeId node) const;
	// For writing pages. Lists are stored as uint32, so this converts into a buffer owned by the graph: the span
	// stays valid until the next neighbors_view call on this graph (not thread-safe). neighbor_ids avoids the copy.
	std::span<const NodeId> neighbors_view(NodeId node, int level) const;
	std::span<const std::uint32_t> neighbor_ids(NodeId node, int level) const; // zero-copy view of the same list
	std::size_t memory_bytes() const;                                          // approximate heap use
	// The half-precision copies that vectors of 256+ dimensions get for the build's distances (hnsw_memory.cpp):
	// their bytes (0 when there are none), and dropping them for good (the build goes on with float distances),
	// e.g. when memory_bytes() reaches a budget.
	std::size_t build_copy_bytes() const;
	void DropBuildCopies();
	void MarkDeleted(NodeId node); // for tests of Repair (pass = 0)
	bool deleted(NodeId node) const;
	Metric metric() const;
	const Params &params() const;

	Status EntryPoint(NodeId &node, int &level) override;
	Status Distances(const float *query, std::span<const NodeId> nodes, std::span<float> out,
	                 std::span<std::uint8_t> pass) override;
	Status Neighbors(NodeId node, int level, std::vector<NodeId> &out) override;
	Status Vector(NodeId node, std::vector<float> &out) override;
	Status SetNeighbors(NodeId node, int level, std::span<const NodeId> neighbors) override;
	Status SetEntryPoint(NodeId node, int level) override;

private:
	friend struct internal::MemoryAccess;
	struct Impl;
	Impl *impl_;
};

} // namespace s5v::hnsw
