// Inverted lists behind an interface (as faiss separates InvertedLists from the IVF index), so that the cold
// tier's lists can live in index pages, in decoded S5 segments or in memory, and an IVF stream over them.
//
// A list is read a chunk at a time: a chunk is a run of rows with their ids, ages, vectors and a live mask
// (in pages: a local tail page or a decoded segment). GetChunk hands out views that stay valid until
// ReleaseChunk; an implementation over buffers pins (never locks across network I/O) and unpins there.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "cancel.h"
#include "distance.h"
#include "merge.h"
#include "status.h"

namespace s5v::ivf {

using ListId = std::uint32_t;

struct ListChunk {
	ListId list = 0;
	std::size_t index = 0;              // which chunk of the list
	std::span<const RowId> ids;         // one per row
	std::span<const std::int64_t> ages; // one per row (microseconds, see the age column)
	std::span<const float> vectors;     // rows * dim, as stored (normalised for cosine); empty when scored
	std::span<const std::uint8_t> live; // 1 = live, 0 = deleted (kept until its chunk is compacted)
	// Lists that score their rows themselves (ScoresQuery): one distance per row, IndexDistance(metric, query,
	// row), for the query given there (any value for rows that are not live). Empty otherwise.
	std::span<const float> distances;
	// Lists that estimate rows from codes (a quantized first pass): exact[r] == 0 marks a row whose distances[r] is
	// only a LOWER BOUND of its distance (its exact distance was not computed); locs[r] is then where the row is,
	// for ExactDistance. Empty: every distance is exact.
	std::span<const std::uint8_t> exact;
	std::span<const std::uint64_t> locs;
	std::uintptr_t token = 0; // the implementation's handle (a buffer, a cache entry)

	std::size_t rows() const { return ids.size(); }
};

class InvertedLists {
public:
	virtual ~InvertedLists() = default;

	virtual std::size_t list_count() const = 0;
	virtual std::size_t dim() const = 0;

	// Every centroid, list_count() * dim() floats, list i at [i * dim, (i + 1) * dim); valid as long as the
	// lists object (an implementation may read them once and keep them).
	virtual Status Centroids(std::span<const float> &out) = 0;

	// Score rows while reading them: an implementation that returns true hands out chunks with `distances` set
	// (IndexDistance(metric, query, row) per row) from then on, and need not copy the vectors out of its pages
	// (`vectors` may be empty). `query` stays valid as long as the lists are read. The default returns false:
	// chunks carry vectors and the search scores them.
	virtual bool ScoresQuery(Metric metric, std::span<const float> query) {
		(void)metric;
		(void)query;
		return false;
	}

	// Scoring lists that estimate rows from codes: the stream expects to hand out about `rows` rows (the exact
	// distances worth computing while a row's page is at hand: those that may enter the nearest `rows`). The
	// default ignores it.
	virtual void SetExactRows(std::size_t rows) { (void)rows; }

	// The exact distance of a row a chunk handed out as a lower bound (exact 0): `loc` is its locs entry. `found`
	// false when the row is no longer there to be returned (removed since: not to be handed out). The default
	// fails (a list that never hands out lower bounds never gets asked).
	virtual Status ExactDistance(ListId list, RowId id, std::uint64_t loc, float &out, bool &found) {
		(void)list;
		(void)id;
		(void)loc;
		(void)out;
		found = false;
		return Status::InvalidInput("these inverted lists hand out no lower bounds");
	}

	// A hint that these lists will be read soon (start fetching remote segments). The default does nothing.
	virtual Status Prefetch(std::span<const ListId> lists) {
		(void)lists;
		return Status::Ok();
	}

	// How many chunks list `list` has now.
	virtual Status ChunkCount(ListId list, std::size_t &out) = 0;

	// Chunk `index` of `list`: its views stay valid until ReleaseChunk(out). On error nothing is held.
	virtual Status GetChunk(ListId list, std::size_t index, ListChunk &out) = 0;
	virtual void ReleaseChunk(ListChunk &chunk) noexcept = 0;
};

// Lists in memory: unit tests, and a model of the interface's contract. Rows are appended to a list and cut
// into chunks of `chunk_rows`. Not thread-safe.
class InMemoryInvertedLists final : public InvertedLists {
public:
	// `centroids` holds lists * dim floats.
	InMemoryInvertedLists(std::size_t dim, std::vector<float> centroids, std::size_t chunk_rows);

	// Append a row to `list` (vector copied).
	Status Add(ListId list, RowId id, std::int64_t age, const float *vec);
	// Mark a row deleted (live = 0) wherever it is; false if it is in no list.
	bool MarkDeleted(RowId id);
	// The list whose centroid is nearest to `vec` under `metric`.
	ListId NearestList(Metric metric, const float *vec) const;
	// How many chunks are held right now (GetChunk without ReleaseChunk): tests check it returns to 0.
	std::size_t chunks_held() const { return held_; }

	std::size_t list_count() const override { return lists_.size(); }
	std::size_t dim() const override { return dim_; }
	Status Centroids(std::span<const float> &out) override;
	Status Prefetch(std::span<const ListId> lists) override;
	Status ChunkCount(ListId list, std::size_t &out) override;
	Status GetChunk(ListId list, std::size_t index, ListChunk &out) override;
	void ReleaseChunk(ListChunk &chunk) noexcept override;

	std::size_t prefetched() const { return prefetched_; }

private:
	struct List {
		std::vector<RowId> ids;
		std::vector<std::int64_t> ages;
		std::vector<float> vectors;
		std::vector<std::uint8_t> live;
	};
	std::size_t dim_;
	std::vector<float> centroids_;
	std::size_t chunk_rows_;
	std::vector<List> lists_;
	std::size_t held_ = 0;
	std::size_t prefetched_ = 0;
};

struct IvfSearchParams {
	std::size_t probes = 1;     // lists read by the first round
	std::size_t max_probes = 0; // stop widening after this many lists (0 = every list)
	bool iterative = true;      // widen when asked for more than the probed lists held
	// Strict order: a row is handed out only when no list that may still be read can hold a nearer row (per-list
	// bounds below), reading more lists first if needed; the stream's output is then in distance order and its
	// LowerBound honest. Without it the stream goes round by round (each round nearest first).
	bool bounded = false;
	// Bounded: a round also prefetches (in the same Prefetch call) every further list that the rounds needed to hand
	// out the stream's first lookahead_rows rows will read, as far as the rows read so far tell, so that their remote
	// parts come in one parallel fetch rather than one fetch (one network round trip) per round: a top-k with
	// k <= lookahead_rows costs at most two fetches. 0: each round prefetches its own lists.
	std::size_t lookahead_rows = 0;
	// Lists that estimate rows from codes (ListChunk::exact) compute exact distances right away only for rows that
	// may enter the nearest exact_rows (SetExactRows); the others wait as lower bounds and are resolved
	// (ExactDistance) when the output reaches their bound, so order and completeness do not depend on it.
	std::size_t exact_rows = 10;
};

// An IVF search as a candidate stream: the nearest `probes` lists (by centroid distance) are read whole,
// every live row scored with the exact distance; rows come out nearest first. When they run out and the
// search may widen, the next lists (as many as the first round, up to max_probes in all) are read, and so on.
// Each round is nearest first; a later round may hold rows nearer than an earlier round's (IVF has no bound
// on the lists it did not read). Lists are disjoint, so no row comes twice.
// Lower bound: the distance of the next row of the current round; kUnknownBound when the round is used up and
// more lists may be read; kNoMoreRows when done.
//
// With params.bounded, every list gets a lower bound of the distance of any row it may hold, from the centroids
// alone: a row is in the list of its nearest centroid (build, insert, training and migration assign so), so a row
// of list l lies in the half-space of points nearer to c_l than to c_1, the centroid nearest to the query; its
// distance to the query is at least the query's distance to that half-space, (|q-c_l|^2 - |q-c_1|^2) /
// (2 |c_l - c_1|) (Euclidean; squared for L2, |q-x|^2 / 2 - 1 for cosine on unit vectors). Inner product and L1
// have no such bound (kUnknownBound: every list that may be read is read before a row is handed out). A row is
// handed out only when its distance is <= the smallest bound of the lists still to read (within max_probes); rows
// already read wait in distance order. LowerBound is then min(next waiting row, bound of the unread lists).
// An optional filter (on id and age) drops rows that may not be returned.
//
// Lower bounds from lists with codes (ListChunk::exact 0): such a row waits with its bound; before a row is handed
// out, every waiting bound at or below its distance is resolved to the exact distance (ExactDistance) and takes its
// place, so the output is the same as if every distance had been exact (a round's rows in distance order; bounded:
// the global order), and a bound counts as a row for LowerBound.
class IvfStream final : public CandidateStream {
public:
	using RowFilter = std::function<bool(RowId id, std::int64_t age)>;

	IvfStream(InvertedLists &lists, Metric metric, const CancelToken &cancel);

	// Start a search (the query is copied); call before Next.
	Status Start(const float *query, const IvfSearchParams &params, RowFilter filter = nullptr);
	Status Next(ScoredRow &out, bool &done) override;
	float LowerBound() const override;

	std::size_t lists_read() const { return next_list_; }
	std::size_t distance_computations() const { return computations_; }
	// Lower bounds resolved to exact distances (ExactDistance calls).
	std::size_t resolves() const { return resolves_; }

private:
	Status ReadRound();
	// Smallest bound of the lists not read yet that may still be read (kNoMoreRows when none).
	float UnreadBound() const { return next_list_ < limit_ ? suffix_bound_[next_list_] : kNoMoreRows; }

	InvertedLists &lists_;
	Metric metric_;
	const CancelToken &cancel_;
	std::vector<float> query_;
	IvfSearchParams params_;
	RowFilter filter_;
	std::vector<ListId> order_;       // lists, nearest centroid first
	std::vector<float> suffix_bound_; // bounded: min of the list bounds of order_[i..limit_)
	std::size_t next_list_ = 0;       // lists of order_ already read
	std::size_t limit_ = 0;           // lists that may be read in all
	// Rows whose distance is only a lower bound (a min-heap on it), and rows resolved from them (a min-heap).
	struct LazyRow {
		float bound;
		RowId row;
		std::uint64_t loc;
		ListId list;
	};
	bool HaveExact() const { return pos_ < round_.size() || !resolved_.empty(); }
	// The nearest exact row waiting (HaveExact()).
	const ScoredRow &BestExact() const;
	void PopBestExact();
	Status ResolveLazy();

	std::vector<ScoredRow> round_;
	std::size_t pos_ = 0;
	std::vector<LazyRow> lazy_;
	std::vector<ScoredRow> resolved_;
	std::size_t resolves_ = 0;
	std::size_t computations_ = 0;
	std::size_t returned_ = 0; // rows handed out since Start
	bool started_ = false;
	bool scored_ = false; // the lists score rows themselves (ScoresQuery)
};

} // namespace s5v::ivf
