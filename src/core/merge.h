// Candidate streams and the merged search over them (the scan of a two-tier index).
//
// A scan asks several sources for rows nearest to a query: the hot graph, cold inverted lists, later remote
// segments. Each source is a CandidateStream that hands out (row, distance) pairs roughly nearest first and
// says how near anything it may still hand out can be (its lower bound). MergedSearch takes the streams in
// distance order and returns each row once (a row can be in two places while it moves between tiers, see
// shared/design/TIERS.md, with the same or a different distance).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <unordered_set>
#include <vector>

#include "hnsw.h"
#include "status.h"

namespace s5v {

// A row's identity across tiers: in PostgreSQL the heap TID, (block << 16) | offset.
using RowId = std::uint64_t;

struct ScoredRow {
	float distance; // IndexDistance of the metric (smaller is nearer)
	RowId row;
};

inline constexpr float kUnknownBound = -std::numeric_limits<float>::infinity();
inline constexpr float kNoMoreRows = std::numeric_limits<float>::infinity();

// One source of candidates. Not thread-safe; a stream belongs to one scan.
class CandidateStream {
public:
	virtual ~CandidateStream() = default;

	// The next candidate; `done` is set (and `out` untouched) when the stream has nothing more. After a non-OK
	// status the stream is not called again.
	virtual Status Next(ScoredRow &out, bool &done) = 0;

	// A lower bound of the distance of every candidate Next may still return: kUnknownBound (-inf) when the
	// stream cannot tell, kNoMoreRows (+inf) once it is done. Cheap: called before every merge step.
	virtual float LowerBound() const = 0;
};

enum class MergeOrder : std::uint8_t {
	// A candidate is returned only when its distance is <= the lower bound of every stream that is not done,
	// so with honest bounds the output is in global distance order and a row that two streams hold is
	// returned at its smallest distance. A stream with an unknown bound is read until its bound is known
	// (or it is done) before anything nearer than it is returned: such a stream makes the merge wait.
	Strict,
	// Each stream's next candidate is taken as soon as every stream that is not done has one waiting, nearest
	// of those first, without looking at bounds (pgvector's relaxed_order): the output follows each stream's
	// own order; a row held by two streams is returned once, at the distance of whichever copy came first.
	Relaxed,
};

// The merge of several streams, deduplicated by RowId. The streams are borrowed (the caller keeps them alive
// for the merge's lifetime). The first error of any stream is returned and then returned again by every
// later Next: nothing more is emitted after it.
class MergedSearch {
public:
	explicit MergedSearch(MergeOrder order) : order_(order) {}
	MergedSearch(const MergedSearch &) = delete;
	MergedSearch &operator=(const MergedSearch &) = delete;

	// Add a stream; allowed at any time (a source that joins late, e.g. an exact pass after the graph ran
	// out): rows already returned are still not returned again.
	Status AddStream(CandidateStream *stream);

	// The next row in merged order; `done` when every stream is done.
	Status Next(ScoredRow &out, bool &done);

	std::size_t returned() const { return emitted_.size(); }
	bool HasReturned(RowId row) const { return emitted_.count(row) != 0; }

private:
	struct Source {
		CandidateStream *stream;
		bool done;
		std::size_t waiting; // candidates of this stream in the pool
	};
	struct Pending {
		float distance;
		RowId row;
		std::size_t source;
	};
	// Pull one candidate from source i into the pool (or mark it done).
	Status Pull(std::size_t i);
	// The source whose candidates must be read before the pool's best may be returned; npos when none.
	std::size_t Blocking(float best) const;

	MergeOrder order_;
	std::vector<Source> sources_;
	std::vector<Pending> pool_; // a min-heap on distance
	std::unordered_set<RowId> emitted_;
	Status failed_;
};

// A stream over rows known in advance (an exact pass, tests): sorted on construction, exact bound.
class SortedRowsStream final : public CandidateStream {
public:
	explicit SortedRowsStream(std::vector<ScoredRow> rows);
	Status Next(ScoredRow &out, bool &done) override;
	float LowerBound() const override;

private:
	std::vector<ScoredRow> rows_;
	std::size_t pos_ = 0;
};

// Maps a graph node to the row it indexes; false when the node is not to be returned (e.g. the store has
// no row for it). The page store implements it with the heap TIDs it saw.
class NodeRows {
public:
	virtual ~NodeRows() = default;
	virtual bool RowOf(hnsw::NodeId node, RowId &out) const = 0;
};

// The hot graph as a stream: an hnsw::Searcher (already started) whose nodes are mapped to rows.
// Lower bound: the distance of the candidate returned last (kUnknownBound before the first). HNSW has no true
// bound (an unvisited node can be nearer than anything seen), and an unknown bound would make a strict merge
// drain the whole graph before returning anything; the last distance treats the graph's output order as the
// distance order, which is the approximation a graph scan makes anyway (the searcher's rounds are each
// nearest first, and a later widening round may find something nearer than what an earlier one returned).
class GraphStream final : public CandidateStream {
public:
	GraphStream(hnsw::Searcher &searcher, const NodeRows &rows) : searcher_(searcher), rows_(rows) {}
	Status Next(ScoredRow &out, bool &done) override;
	float LowerBound() const override { return bound_; }

private:
	hnsw::Searcher &searcher_;
	const NodeRows &rows_;
	float bound_ = kUnknownBound;
};

} // namespace s5v
