// In-memory inverted lists and the IVF stream (see inverted_lists.h).
#include "inverted_lists.h"

#include <algorithm>
#include <cmath>
#include <new>
#include <utility>

namespace s5v::ivf {

InMemoryInvertedLists::InMemoryInvertedLists(std::size_t dim, std::vector<float> centroids, std::size_t chunk_rows)
    : dim_(dim), centroids_(std::move(centroids)), chunk_rows_(chunk_rows == 0 ? 1 : chunk_rows),
      lists_(dim == 0 ? 0 : centroids_.size() / dim) {}

Status InMemoryInvertedLists::Add(ListId list, RowId id, std::int64_t age, const float *vec) {
	if (list >= lists_.size() || vec == nullptr)
		return Status::InvalidInput("no such list, or no vector");
	try {
		List &l = lists_[list];
		l.ids.push_back(id);
		l.ages.push_back(age);
		l.vectors.insert(l.vectors.end(), vec, vec + dim_);
		l.live.push_back(1);
	} catch (const std::bad_alloc &) {
		return Status::OutOfMemory("out of memory adding to an inverted list");
	}
	return Status::Ok();
}

bool InMemoryInvertedLists::MarkDeleted(RowId id) {
	for (List &l : lists_)
		for (std::size_t i = 0; i < l.ids.size(); ++i)
			if (l.ids[i] == id) {
				l.live[i] = 0;
				return true;
			}
	return false;
}

ListId InMemoryInvertedLists::NearestList(Metric metric, const float *vec) const {
	ListId best = 0;
	float best_d = 0;
	for (std::size_t i = 0; i < lists_.size(); ++i) {
		float d = IndexDistance(metric, vec, &centroids_[i * dim_], dim_);
		if (i == 0 || d < best_d) {
			best = static_cast<ListId>(i);
			best_d = d;
		}
	}
	return best;
}

Status InMemoryInvertedLists::Centroids(std::span<const float> &out) {
	out = std::span<const float>(centroids_.data(), lists_.size() * dim_);
	return Status::Ok();
}

Status InMemoryInvertedLists::Prefetch(std::span<const ListId> lists) {
	prefetched_ += lists.size();
	return Status::Ok();
}

Status InMemoryInvertedLists::ChunkCount(ListId list, std::size_t &out) {
	if (list >= lists_.size())
		return Status::InvalidInput("no such list");
	out = (lists_[list].ids.size() + chunk_rows_ - 1) / chunk_rows_;
	return Status::Ok();
}

Status InMemoryInvertedLists::GetChunk(ListId list, std::size_t index, ListChunk &out) {
	if (list >= lists_.size())
		return Status::InvalidInput("no such list");
	const List &l = lists_[list];
	const std::size_t begin = index * chunk_rows_;
	if (begin >= l.ids.size())
		return Status::InvalidInput("no such chunk");
	const std::size_t n = std::min(chunk_rows_, l.ids.size() - begin);
	out.list = list;
	out.index = index;
	out.ids = std::span<const RowId>(l.ids.data() + begin, n);
	out.ages = std::span<const std::int64_t>(l.ages.data() + begin, n);
	out.vectors = std::span<const float>(l.vectors.data() + begin * dim_, n * dim_);
	out.live = std::span<const std::uint8_t>(l.live.data() + begin, n);
	out.token = 1;
	held_++;
	return Status::Ok();
}

void InMemoryInvertedLists::ReleaseChunk(ListChunk &chunk) noexcept {
	if (chunk.token != 0 && held_ > 0)
		held_--;
	chunk = ListChunk{};
}

namespace {

// Lower bounds of the lists (see IvfStream in the header) for the first `limit` of `by_distance` (squared centroid
// distances for L2, -dot for cosine), as suffix minima in that order. Computed in double and lowered by a margin so
// that float rounding in the row distances cannot make a bound exceed a row's computed distance.
void ComputeListBounds(Metric metric, const float *query, const float *centroids, std::size_t dim,
                       const std::vector<std::pair<float, ListId>> &by_distance, std::size_t limit,
                       std::vector<float> &suffix) {
	const bool euclid = metric == Metric::L2 || metric == Metric::Cosine;
	const float *c1 = &centroids[(std::size_t)by_distance[0].second * dim];
	double q1 = 0; // |q - c1|^2
	for (std::size_t k = 0; k < dim; ++k) {
		double d = (double)query[k] - c1[k];
		q1 += d * d;
	}
	for (std::size_t i = limit; i-- > 0;) {
		float bound = kUnknownBound;
		if (euclid) {
			const float *cl = &centroids[(std::size_t)by_distance[i].second * dim];
			double ql = 0, sep = 0;
			for (std::size_t k = 0; k < dim; ++k) {
				double d = (double)query[k] - cl[k];
				double e = (double)cl[k] - c1[k];
				ql += d * d;
				sep += e * e;
			}
			double h = 0; // Euclidean distance from the query to the half-space of list i
			if (sep > 0 && ql > q1)
				h = (ql - q1) / (2.0 * std::sqrt(sep));
			h = std::max(0.0, h * (1.0 - 1e-4) - 1e-6);
			double b = metric == Metric::L2 ? h * h : h * h / 2.0 - 1.0;
			b -= 1e-5 * (1.0 + std::fabs(b));
			bound = std::isfinite(b) ? (float)b : kUnknownBound;
		}
		suffix[i] = std::min(bound, suffix[i + 1]);
	}
}

} // namespace

IvfStream::IvfStream(InvertedLists &lists, Metric metric, const CancelToken &cancel)
    : lists_(lists), metric_(metric), cancel_(cancel) {}

Status IvfStream::Start(const float *query, const IvfSearchParams &params, RowFilter filter) {
	const std::size_t dim = lists_.dim();
	if (query == nullptr || dim == 0)
		return Status::InvalidInput("ivf search needs a query vector");
	if (params.probes == 0)
		return Status::InvalidInput("ivf probes must be at least 1");
	try {
		query_.assign(query, query + dim);
		params_ = params;
		filter_ = std::move(filter);
		std::span<const float> centroids;
		S5V_RETURN_IF_ERROR(lists_.Centroids(centroids));
		const std::size_t n = lists_.list_count();
		if (centroids.size() < n * dim)
			return Status::Corrupt("inverted lists have fewer centroids than lists");
		std::vector<std::pair<float, ListId>> by_distance(n);
		for (std::size_t i = 0; i < n; ++i)
			by_distance[i] = {IndexDistance(metric_, query_.data(), &centroids[i * dim], dim), static_cast<ListId>(i)};
		std::sort(by_distance.begin(), by_distance.end());
		order_.resize(n);
		for (std::size_t i = 0; i < n; ++i)
			order_[i] = by_distance[i].second;
		limit_ = params.max_probes == 0 ? n : std::min(n, std::max(params.max_probes, params.probes));
		if (!params.iterative)
			limit_ = std::min(limit_, params.probes);
		suffix_bound_.assign(limit_ + 1, kNoMoreRows);
		if (params.bounded && limit_ > 0)
			ComputeListBounds(metric_, query_.data(), centroids.data(), dim, by_distance, limit_, suffix_bound_);
		scored_ = lists_.ScoresQuery(metric_, std::span<const float>(query_.data(), dim));
		if (scored_)
			lists_.SetExactRows(params.exact_rows);
		next_list_ = 0;
		round_.clear();
		pos_ = 0;
		lazy_.clear();
		resolved_.clear();
		resolves_ = 0;
		computations_ = 0;
		returned_ = 0;
		started_ = true;
	} catch (const std::bad_alloc &) {
		return Status::OutOfMemory("out of memory in ivf search");
	}
	return Status::Ok();
}

// Read the next lists (probes of them, within limit_), score their live rows, sort them.
Status IvfStream::ReadRound() {
	const std::size_t dim = lists_.dim();
	const std::size_t end = std::min(limit_, next_list_ + params_.probes);
	if (params_.bounded)
		round_.erase(round_.begin(), round_.begin() + (std::ptrdiff_t)pos_); // rows read but not returned wait on
	else
		round_.clear();
	pos_ = 0;
	std::size_t fetch_end = end;
	if (params_.bounded && params_.lookahead_rows > returned_ && !round_.empty()) {
		// Next reads round after round until the first unread list's suffix bound reaches the waiting row's distance
		// (rows read meanwhile are only nearer), so the rounds that hand out the stream's lookahead_rows-th row read
		// at most the lists up to the first position q whose suffix bound is at least the distance of the waiting
		// row of that rank (suffix bounds grow along order_), rounded up to a round's end. Prefetched now, they come
		// in one fetch.
		const float target = round_[std::min(round_.size(), params_.lookahead_rows - returned_) - 1].distance;
		std::size_t q = next_list_;
		while (q < limit_ && suffix_bound_[q] < target)
			++q;
		if (q > end) {
			const std::size_t rounds = (q - next_list_ + params_.probes - 1) / params_.probes;
			fetch_end = std::min(limit_, next_list_ + rounds * params_.probes);
		}
	}
	S5V_RETURN_IF_ERROR(lists_.Prefetch(std::span<const ListId>(order_.data() + next_list_, fetch_end - next_list_)));
	for (; next_list_ < end; ++next_list_) {
		const ListId list = order_[next_list_];
		std::size_t chunks = 0;
		S5V_RETURN_IF_ERROR(lists_.ChunkCount(list, chunks));
		for (std::size_t c = 0; c < chunks; ++c) {
			if (cancel_.cancelled())
				return Status::Cancelled();
			ListChunk chunk;
			S5V_RETURN_IF_ERROR(lists_.GetChunk(list, c, chunk));
			const std::size_t rows = chunk.rows();
			const bool lazy = scored_ && !chunk.exact.empty();
			if (chunk.ages.size() != rows || chunk.live.size() != rows ||
			    (scored_ ? chunk.distances.size() != rows : chunk.vectors.size() != rows * dim) ||
			    (lazy && (chunk.exact.size() != rows || chunk.locs.size() != rows))) {
				lists_.ReleaseChunk(chunk);
				return Status::Corrupt("inverted list chunk has arrays of different lengths");
			}
			try {
				for (std::size_t r = 0; r < rows; ++r) {
					if (!chunk.live[r] || (filter_ && !filter_(chunk.ids[r], chunk.ages[r])))
						continue;
					if (lazy && !chunk.exact[r]) {
						lazy_.push_back(LazyRow{chunk.distances[r], chunk.ids[r], chunk.locs[r], list});
						std::push_heap(lazy_.begin(), lazy_.end(),
						               [](const LazyRow &a, const LazyRow &b) { return a.bound > b.bound; });
						continue;
					}
					float d = scored_ ? chunk.distances[r]
					                  : IndexDistance(metric_, query_.data(), &chunk.vectors[r * dim], dim);
					round_.push_back(ScoredRow{d, chunk.ids[r]});
					computations_++;
				}
			} catch (...) {
				lists_.ReleaseChunk(chunk);
				return Status::OutOfMemory("out of memory in ivf search");
			}
			lists_.ReleaseChunk(chunk);
		}
	}
	try {
		std::sort(round_.begin(), round_.end(), [](const ScoredRow &a, const ScoredRow &b) {
			return a.distance < b.distance || (a.distance == b.distance && a.row < b.row);
		});
	} catch (...) {
		return Status::OutOfMemory("out of memory in ivf search");
	}
	return Status::Ok();
}

namespace {

bool RowBefore(const ScoredRow &a, const ScoredRow &b) {
	return a.distance < b.distance || (a.distance == b.distance && a.row < b.row);
}
// std heap comparators (max-heap of "after"): the heap's front is the smallest.
bool ExactAfter(const ScoredRow &a, const ScoredRow &b) {
	return RowBefore(b, a);
}

} // namespace

const ScoredRow &IvfStream::BestExact() const {
	if (pos_ < round_.size() && (resolved_.empty() || RowBefore(round_[pos_], resolved_.front())))
		return round_[pos_];
	return resolved_.front();
}

void IvfStream::PopBestExact() {
	if (pos_ < round_.size() && (resolved_.empty() || RowBefore(round_[pos_], resolved_.front()))) {
		pos_++;
		return;
	}
	std::pop_heap(resolved_.begin(), resolved_.end(), ExactAfter);
	resolved_.pop_back();
}

// The nearest lower bound gets its exact distance (and waits with the exact rows), or goes if its row is gone.
Status IvfStream::ResolveLazy() {
	std::pop_heap(lazy_.begin(), lazy_.end(), [](const LazyRow &a, const LazyRow &b) { return a.bound > b.bound; });
	LazyRow l = lazy_.back();
	lazy_.pop_back();
	float d = 0.0f;
	bool found = false;
	S5V_RETURN_IF_ERROR(lists_.ExactDistance(l.list, l.row, l.loc, d, found));
	resolves_++;
	computations_++;
	if (!found)
		return Status::Ok();
	try {
		resolved_.push_back(ScoredRow{d, l.row});
	} catch (...) {
		return Status::OutOfMemory("out of memory in ivf search");
	}
	std::push_heap(resolved_.begin(), resolved_.end(), ExactAfter);
	return Status::Ok();
}

Status IvfStream::Next(ScoredRow &out, bool &done) {
	done = true;
	if (!started_)
		return Status::Ok();
	for (;;) {
		const bool have_exact = HaveExact();
		const bool have = have_exact || !lazy_.empty();
		if (params_.bounded) {
			// A waiting row goes out only when no list still to read may hold a nearer one.
			float best = kNoMoreRows;
			if (have_exact)
				best = BestExact().distance;
			if (!lazy_.empty())
				best = std::min(best, lazy_.front().bound);
			if ((!have || best > UnreadBound()) && next_list_ < limit_) {
				S5V_RETURN_IF_ERROR(ReadRound());
				continue;
			}
		} else if (!have) {
			if (next_list_ >= limit_)
				return Status::Ok();
			S5V_RETURN_IF_ERROR(ReadRound());
			continue;
		}
		if (!have)
			return Status::Ok();
		// A bound at or below the best exact row may hide a nearer row: resolve it first.
		if (!lazy_.empty() && (!have_exact || lazy_.front().bound <= BestExact().distance)) {
			S5V_RETURN_IF_ERROR(ResolveLazy());
			continue;
		}
		done = false;
		out = BestExact();
		PopBestExact();
		returned_++;
		return Status::Ok();
	}
}

float IvfStream::LowerBound() const {
	if (!started_)
		return kNoMoreRows;
	float waiting = kNoMoreRows;
	if (HaveExact())
		waiting = BestExact().distance;
	if (!lazy_.empty())
		waiting = std::min(waiting, lazy_.front().bound);
	if (params_.bounded)
		return std::min(waiting, UnreadBound());
	if (HaveExact() || !lazy_.empty())
		return waiting;
	return next_list_ < limit_ ? kUnknownBound : kNoMoreRows;
}

} // namespace s5v::ivf
