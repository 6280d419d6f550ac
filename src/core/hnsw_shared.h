// An HNSW graph in one caller-provided block of memory that several processes (or threads) map, each at its own
// address: the parallel index build puts it in a dynamic shared memory segment and every participant inserts into
// it at once. Relocatable (the block holds offsets, never pointers) and of fixed capacity (nodes and upper-level
// list words are reserved by Init; Add reports LimitExceeded past them). The algorithm is the same code as
// InMemoryGraph's (hnsw_internal.h templates) over a third access type.
//
// Concurrency: every neighbour list has a lock (a spin lock on a 32-bit word of the block, per node); list reads
// copy the list under it and list changes are compare-and-set under it, which the algorithm retries on conflict.
// The entry point has a reader/writer lock: an insert holds it shared, or exclusively when it will change the entry
// point (the graph is empty or the new node's level is above the entry point's), as the page store's inserts do.
// Locks are held only inside calls of this class and released before they return (never across a cancel), so a
// participant that stops (an error, a cancel) leaves no lock behind. Vectors, levels and payloads of a node are
// written once by Add, before any other node can link to it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "cancel.h"
#include "distance.h"
#include "hnsw.h"
#include "status.h"

namespace s5v::hnsw {

namespace internal {
struct SharedAccess;
}

class SharedGraph final : public MutableGraphStore {
public:
	// Bytes a block needs for `capacity` nodes of `dim` floats with `payload_bytes` of caller data each (0 on
	// overflow or bad parameters). Includes a reserve for upper-level lists sized for the expected level
	// distribution (1/(m-1) levels a node) with a wide margin.
	static std::size_t BytesFor(std::size_t capacity, std::size_t dim, const Params &params,
	                            std::size_t payload_bytes) noexcept;

	// Lay out an empty graph in `base` (`bytes` from BytesFor, 64-byte aligned). Done once, by one participant,
	// before the others attach. O(1): node data is initialised by Add.
	static Status Init(void *base, std::size_t bytes, std::size_t capacity, std::size_t dim, Metric metric,
	                   const Params &params, std::size_t payload_bytes) noexcept;

	// A view of a block laid out by Init (in this or another process). Check ok() before use: a block that is not
	// one (bad magic, sizes that do not fit `bytes`) gives a view that refuses every call.
	SharedGraph(void *base, std::size_t bytes) noexcept;
	~SharedGraph() override;
	SharedGraph(const SharedGraph &) = delete;
	SharedGraph &operator=(const SharedGraph &) = delete;
	Status status() const;

	// Reserve a node, copy its vector (dim floats), level and payload (payload_bytes); returns its id. Thread-safe.
	// LimitExceeded when the block is full (nodes or upper-level words): the graph is unchanged then, except that
	// full() turns true for every participant.
	Status Add(const float *vec, int level, const void *payload, NodeId &out) noexcept;
	// Link a node returned by Add into the graph (Insert of hnsw.h), holding the entry-point lock as described
	// above. Thread-safe: participants call it at once for different nodes.
	Status InsertConcurrent(NodeId node, const CancelToken &cancel) noexcept;
	bool full() const noexcept;

	// Readers for writing the graph out after every participant is done (no locks taken).
	std::size_t size() const noexcept; // nodes added
	std::size_t capacity() const noexcept;
	std::size_t dim() const noexcept;
	int level(NodeId node) const noexcept;
	const float *vector_data(NodeId node) const noexcept;
	const void *payload(NodeId node) const noexcept;
	std::span<const std::uint32_t> neighbor_ids(NodeId node, int level) const noexcept;
	const Params &params() const noexcept;

	// MutableGraphStore (the virtual path: Repair, ForceLinks, Searcher). Each call takes the locks it needs.
	Status EntryPoint(NodeId &node, int &level) override;
	Status Distances(const float *query, std::span<const NodeId> nodes, std::span<float> out,
	                 std::span<std::uint8_t> pass) override;
	Status Neighbors(NodeId node, int level, std::vector<NodeId> &out) override;
	Status Vector(NodeId node, std::vector<float> &out) override;
	Status SetNeighbors(NodeId node, int level, std::span<const NodeId> neighbors) override;
	Status SetEntryPoint(NodeId node, int level) override;
	Status CompareAndSetNeighbors(NodeId node, int level, std::span<const NodeId> expected,
	                              std::span<const NodeId> desired, bool &applied) override;

	struct View; // this process's pointers into the block

private:
	friend struct internal::SharedAccess;
	View *view_;
	internal::SharedAccess *access_ = nullptr; // scratch of this view's inserts (one inserting thread per view)
	Status status_;
};

} // namespace s5v::hnsw
