// HNSW internals shared by hnsw.cpp (the virtual GraphStore path) and hnsw_memory.cpp (the devirtualised
// InMemoryGraph path). The algorithm is written once, as templates over an "access" type that hides how
// neighbours, distances and links are reached; each store type gets its own instantiation.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <vector>

#include "hnsw.h"

namespace s5v::hnsw::internal {

// A visited or queued node with its distance to the current query.
struct Cand {
	float d;
	NodeId id;
};

// std heap comparators: NearestOnTop makes a min-heap (candidate queue), FarthestOnTop a max-heap (result pool).
struct NearestOnTop {
	bool operator()(const Cand &a, const Cand &b) const noexcept { return a.d > b.d; }
};
struct FarthestOnTop {
	bool operator()(const Cand &a, const Cand &b) const noexcept { return a.d < b.d; }
};
inline bool Ascending(const Cand &a, const Cand &b) noexcept {
	return a.d < b.d || (a.d == b.d && a.id < b.id);
}

// Nearest first; equal distances (exact duplicates) in a pseudo-random order that differs per base node, so that
// in-links among duplicates spread like a random regular graph instead of piling onto the oldest ids (which
// orphans every later duplicate). Deterministic.
struct AscendingFrom {
	NodeId base;
	static std::uint64_t Mix(std::uint64_t x) noexcept {
		x ^= x >> 33;
		x *= 0xFF51AFD7ED558CCDULL;
		x ^= x >> 33;
		x *= 0xC4CEB9FE1A85EC53ULL;
		x ^= x >> 33;
		return x;
	}
	bool operator()(const Cand &a, const Cand &b) const noexcept {
		if (a.d != b.d)
			return a.d < b.d;
		const std::uint64_t ha = Mix(a.id ^ (base * 0x9E3779B97F4A7C15ULL));
		const std::uint64_t hb = Mix(b.id ^ (base * 0x9E3779B97F4A7C15ULL));
		return ha < hb || (ha == hb && a.id < b.id);
	}
};

// Visited set for dense ids (InMemoryGraph): one generation stamp per node, reset in O(1).
class DenseVisited {
public:
	void Reset(std::size_t capacity) {
		if (marks_.size() < capacity)
			marks_.resize(capacity + capacity / 4 + 64, 0);
		if (++generation_ == 0) {
			std::fill(marks_.begin(), marks_.end(), 0);
			generation_ = 1;
		}
	}
	// True if `id` was not visited yet (and marks it).
	bool Insert(NodeId id) {
		if (id >= marks_.size()) [[unlikely]]
			marks_.resize(static_cast<std::size_t>(id) + marks_.size() / 4 + 64, 0);
		std::uint16_t &m = marks_[static_cast<std::size_t>(id)];
		if (m == generation_)
			return false;
		m = generation_;
		return true;
	}

private:
	std::vector<std::uint16_t> marks_;
	std::uint16_t generation_ = 0;
};

// Visited set for sparse 64-bit ids (pages: (block << 16) | offset): open addressing, linear probing.
class HashVisited {
public:
	void Reset(std::size_t /*capacity_hint*/) {
		if (slots_.empty() || (slots_.size() > 4096 && count_ * 8 < slots_.size())) {
			// Start small, and shrink a table that a previous large search left behind.
			slots_.assign(1024, kNoNode);
			shift_ = 64 - 10;
		} else {
			std::fill(slots_.begin(), slots_.end(), kNoNode);
		}
		count_ = 0;
	}
	bool Insert(NodeId id) {
		if ((count_ + 1) * 2 > slots_.size())
			Grow();
		std::size_t mask = slots_.size() - 1;
		std::size_t i = Hash(id);
		while (true) {
			NodeId s = slots_[i];
			if (s == id)
				return false;
			if (s == kNoNode) {
				slots_[i] = id;
				++count_;
				return true;
			}
			i = (i + 1) & mask;
		}
	}

private:
	std::size_t Hash(NodeId id) const noexcept {
		return static_cast<std::size_t>((id * 0x9E3779B97F4A7C15ULL) >> shift_);
	}
	void Grow() {
		std::vector<NodeId> old(slots_.size() * 2, kNoNode);
		old.swap(slots_);
		--shift_;
		std::size_t mask = slots_.size() - 1;
		for (NodeId id : old) {
			if (id == kNoNode)
				continue;
			std::size_t i = Hash(id);
			while (slots_[i] != kNoNode)
				i = (i + 1) & mask;
			slots_[i] = id;
		}
	}

	std::vector<NodeId> slots_;
	std::size_t count_ = 0;
	unsigned shift_ = 64 - 10;
};

// Buffers reused across searches and inserts (no allocation per distance or per expansion once warm).
struct Scratch {
	std::vector<Cand> queue;     // candidates to expand (min-heap)
	std::vector<Cand> pool;      // result pool (max-heap, pass = 1 only)
	std::vector<Cand> deferred;  // visited beyond the ef bound, not expanded (iterative search only)
	std::vector<Cand> discarded; // pass = 1 results pushed out of the pool (iterative search only)
	std::vector<NodeId> ids;     // neighbours gathered for one batched Distances call
	std::vector<float> dists;
	std::vector<std::uint8_t> pass;
	std::vector<Cand> sorted;   // a level's results, nearest first
	std::vector<Cand> selected; // heuristic output
	std::vector<NodeId> sel_ids;
	std::vector<float> sel_dists;
	std::vector<NodeId> links; // a neighbour's current list (back-links)
	std::vector<Cand> link_cands;
	std::vector<Cand> seeds;
	std::vector<std::uint8_t> seed_pass;
	Cand nearest_walked{std::numeric_limits<float>::infinity(), kNoNode};
	bool nearest_walked_pass = false;
};

inline constexpr unsigned kCancelPollMask = 63; // poll the token every 64 expansions
inline constexpr bool kKeepPrunedBackLinks = true;

// Greedy descent (ef = 1) from `cur` through levels from_level .. stop_level + 1.
template <class A>
Status GreedyDescend(A &a, const float *q, int from_level, int stop_level, Cand &cur, bool &cur_pass,
                     const CancelToken &cancel, std::size_t &computations) {
	Scratch &s = a.scratch;
	unsigned polls = 0;
	for (int l = from_level; l > stop_level; --l) {
		bool changed = true;
		while (changed) {
			changed = false;
			if ((++polls & kCancelPollMask) == 0 && cancel.cancelled())
				return Status::Cancelled();
			s.ids.clear();
			S5V_RETURN_IF_ERROR(a.ForEachNeighbor(cur.id, l, [&](NodeId n) { s.ids.push_back(n); }));
			if (s.ids.empty())
				break;
			s.dists.resize(s.ids.size());
			s.pass.resize(s.ids.size());
			S5V_RETURN_IF_ERROR(a.Distances(q, s.ids.data(), s.ids.size(), s.dists.data(), s.pass.data()));
			computations += s.ids.size();
			for (std::size_t i = 0; i < s.ids.size(); ++i) {
				if (s.dists[i] < cur.d) {
					cur = {s.dists[i], s.ids[i]};
					cur_pass = s.pass[i] != 0;
					changed = true;
				}
			}
		}
	}
	return Status::Ok();
}

// Best-first search on one level from the seeds already in s.queue / s.pool (and marked visited).
// Expands until the nearest queued candidate is farther than the farthest of `ef` pooled results.
// Nodes with pass = 0 are queued (walked through) but never pooled. With kKeep, nodes beyond the bound are
// kept in s.deferred (and, if pass = 1, in s.discarded) with the pool's overflow, so a later round can widen;
// `max_visits` (0 = none) stops the round once that many distances were computed.
template <bool kKeep, class A>
Status SearchLayer(A &a, const float *q, int level, std::size_t ef, const CancelToken &cancel,
                   std::size_t &computations, std::size_t max_visits) {
	Scratch &s = a.scratch;
	unsigned polls = 0;
	while (!s.queue.empty()) {
		const Cand c = s.queue.front();
		if (s.pool.size() >= ef && c.d > s.pool.front().d)
			break;
		std::pop_heap(s.queue.begin(), s.queue.end(), NearestOnTop{});
		s.queue.pop_back();
		if ((++polls & kCancelPollMask) == 0 && cancel.cancelled())
			return Status::Cancelled();

		s.ids.clear();
		S5V_RETURN_IF_ERROR(a.ForEachNeighbor(c.id, level, [&](NodeId n) {
			if (a.visited.Insert(n))
				s.ids.push_back(n);
		}));
		const std::size_t n = s.ids.size();
		if (n == 0)
			continue;
		if (s.dists.size() < n) {
			s.dists.resize(n);
			s.pass.resize(n);
		}
		S5V_RETURN_IF_ERROR(a.Distances(q, s.ids.data(), n, s.dists.data(), s.pass.data()));
		computations += n;
		for (std::size_t i = 0; i < n; ++i) {
			const Cand e{s.dists[i], s.ids[i]};
			const bool pass = s.pass[i] != 0;
			if (e.d < s.nearest_walked.d) {
				s.nearest_walked = e;
				s.nearest_walked_pass = pass;
			}
			if (s.pool.size() < ef || e.d < s.pool.front().d) {
				s.queue.push_back(e);
				std::push_heap(s.queue.begin(), s.queue.end(), NearestOnTop{});
				if (pass) {
					s.pool.push_back(e);
					std::push_heap(s.pool.begin(), s.pool.end(), FarthestOnTop{});
					if (s.pool.size() > ef) {
						std::pop_heap(s.pool.begin(), s.pool.end(), FarthestOnTop{});
						if constexpr (kKeep)
							s.discarded.push_back(s.pool.back());
						s.pool.pop_back();
					}
				}
			} else if constexpr (kKeep) {
				s.deferred.push_back(e);
				if (pass)
					s.discarded.push_back(e);
			}
		}
		if (max_visits != 0 && computations >= max_visits)
			break;
	}
	return Status::Ok();
}

// Neighbour selection heuristic (Malkov & Yashunin, algorithm 4; as hnswlib): walking `sorted` nearest first,
// keep a candidate only if it is nearer to the base node than to every neighbour already kept.
template <class A>
Status SelectNeighbors(A &a, const std::vector<Cand> &sorted, std::size_t m, std::vector<Cand> &out) {
	out.clear();
	if (sorted.size() < m) {
		out.assign(sorted.begin(), sorted.end());
		return Status::Ok();
	}
	Scratch &s = a.scratch;
	for (const Cand &e : sorted) {
		if (out.size() >= m)
			break;
		bool good = true;
		if (!out.empty()) {
			S5V_RETURN_IF_ERROR(a.NearerThanAll(e, out, good));
		}
		if (good)
			out.push_back(e);
	}
	(void)s;
	return Status::Ok();
}

// Add `node` (at distance d from `nb`) to the list of `nb` at `level`; if the list is full, re-select among the
// old neighbours and `node` with the heuristic (nodes with pass = 0 are dropped).
template <class A> Status AddBackLink(A &a, NodeId nb, NodeId node, float d, int level, std::size_t max_links) {
	Scratch &s = a.scratch;
	s.links.clear();
	bool present = false;
	S5V_RETURN_IF_ERROR(a.ForEachNeighbor(nb, level, [&](NodeId x) {
		present |= (x == node);
		s.links.push_back(x);
	}));
	if (present)
		return Status::Ok();
	if (s.links.size() < max_links) {
		s.links.push_back(node);
		return a.SetNeighborIds(nb, level, s.links.data(), s.links.size());
	}
	const std::size_t n = s.links.size();
	s.dists.resize(std::max(s.dists.size(), n));
	s.pass.resize(std::max(s.pass.size(), n));
	S5V_RETURN_IF_ERROR(a.StoredDistances(nb, s.links.data(), n, s.dists.data(), s.pass.data()));
	s.link_cands.clear();
	s.link_cands.push_back({d, node});
	for (std::size_t i = 0; i < n; ++i)
		if (s.pass[i] && s.links[i] != nb)
			s.link_cands.push_back({s.dists[i], s.links[i]});
	std::sort(s.link_cands.begin(), s.link_cands.end(), AscendingFrom{nb});
	// SelectNeighbors uses s.selected only through `out`; use a dedicated buffer since it's not in flight here.
	S5V_RETURN_IF_ERROR(SelectNeighbors(a, s.link_cands, max_links, s.selected));
	if constexpr (kKeepPrunedBackLinks) {
		// Keep the list full: only the farthest pruned candidate is dropped (as pgvector replaces one slot).
		// Far fewer nodes lose their last in-link this way.
		if (s.selected.size() < max_links) {
			for (const Cand &c : s.link_cands) {
				if (s.selected.size() >= max_links)
					break;
				bool kept = false;
				for (const Cand &k : s.selected)
					kept |= (k.id == c.id);
				if (!kept)
					s.selected.push_back(c);
			}
		}
	}
	return a.SetNeighborCands(nb, level, s.selected.data(), s.selected.size());
}

// Shared body of Insert and Repair: find `node`'s neighbours on levels min(level, entry level) .. 0, link them,
// add back-links; Insert also raises the entry point.
template <class A>
Status LinkNode(A &a, NodeId node, int level, const float *vec, const Params &p, const CancelToken &cancel,
                bool repair) {
	NodeId ep;
	int ep_level;
	S5V_RETURN_IF_ERROR(a.EntryPoint(ep, ep_level));
	if (ep == kNoNode) {
		if (repair)
			return Status::Ok();
		return a.SetEntryPoint(node, level);
	}
	if (ep == node && !repair)
		return Status::Ok(); // already the entry point: nothing to link to
	Scratch &s = a.scratch;
	std::size_t comps = 0;
	float ep_d;
	std::uint8_t ep_pass;
	S5V_RETURN_IF_ERROR(a.Distances(vec, &ep, 1, &ep_d, &ep_pass));
	Cand cur{ep_d, ep};
	bool cur_pass = ep_pass != 0;
	S5V_RETURN_IF_ERROR(GreedyDescend(a, vec, ep_level, level, cur, cur_pass, cancel, comps));

	s.seeds.assign(1, cur);
	s.seed_pass.assign(1, cur_pass);
	const std::size_t ef = static_cast<std::size_t>(std::max(p.ef_construction, 1));
	for (int l = std::min(level, ep_level); l >= 0; --l) {
		a.visited.Reset(a.VisitedCapacity());
		s.queue.clear();
		s.pool.clear();
		s.nearest_walked = {std::numeric_limits<float>::infinity(), kNoNode};
		for (std::size_t i = 0; i < s.seeds.size(); ++i) {
			const Cand &e = s.seeds[i];
			if (!a.visited.Insert(e.id))
				continue;
			s.queue.push_back(e);
			if (s.seed_pass[i] && e.id != node)
				s.pool.push_back(e);
			if (e.d < s.nearest_walked.d) {
				s.nearest_walked = e;
				s.nearest_walked_pass = s.seed_pass[i];
			}
		}
		std::make_heap(s.queue.begin(), s.queue.end(), NearestOnTop{});
		std::make_heap(s.pool.begin(), s.pool.end(), FarthestOnTop{});
		(void)a.visited.Insert(node); // never link to itself (Repair: it is in the graph)
		S5V_RETURN_IF_ERROR(SearchLayer<false>(a, vec, l, ef, cancel, comps, 0));

		s.sorted.assign(s.pool.begin(), s.pool.end());
		std::sort(s.sorted.begin(), s.sorted.end(), AscendingFrom{node});
		const std::size_t max_links = static_cast<std::size_t>(MaxNeighbors(p, l));
		std::vector<Cand> &selected = s.selected;
		S5V_RETURN_IF_ERROR(SelectNeighbors(a, s.sorted, max_links, selected));
		// Back-links reuse s.selected; keep our own copy of this level's choice.
		s.sel_ids.clear();
		s.sel_dists.clear();
		for (const Cand &c : selected) {
			s.sel_ids.push_back(c.id);
			s.sel_dists.push_back(c.d);
		}
		S5V_RETURN_IF_ERROR(a.SetNeighborIds(node, l, s.sel_ids.data(), s.sel_ids.size()));
		for (std::size_t i = 0; i < s.sel_ids.size(); ++i) {
			// s.sel_ids / s.sel_dists are not touched by AddBackLink.
			S5V_RETURN_IF_ERROR(AddBackLink(a, s.sel_ids[i], node, s.sel_dists[i], l, max_links));
		}
		// The next level starts from everything this level found (the paper's W), or from the nearest node
		// walked through when every node here had pass = 0.
		if (!s.sorted.empty()) {
			s.seeds.assign(s.sorted.begin(), s.sorted.end());
			s.seed_pass.assign(s.seeds.size(), 1);
		} else if (s.nearest_walked.id != kNoNode) {
			s.seeds.assign(1, s.nearest_walked);
			s.seed_pass.assign(1, s.nearest_walked_pass);
		}
	}
	if (!repair && level > ep_level)
		return a.SetEntryPoint(node, level);
	return Status::Ok();
}

// A resumable query (the engine behind Searcher), one instantiation per access type.
class SearchEngine {
public:
	virtual ~SearchEngine() = default;
	virtual Status Start(const float *query, const SearchParams &params) = 0;
	virtual Status Next(Candidate &out, bool &done) = 0;
	virtual std::size_t computations() const = 0;
};

template <class A> class SearchEngineT final : public SearchEngine {
public:
	template <class... Args>
	SearchEngineT(std::size_t dim, const CancelToken &cancel, Args &&...args)
	    : a_(std::forward<Args>(args)...), dim_(dim), cancel_(cancel) {}

	Status Start(const float *query, const SearchParams &params) override {
		Scratch &s = a_.scratch;
		query_.assign(query, query + dim_);
		params_ = params;
		ef_ = static_cast<std::size_t>(std::max(params.ef_search, 1));
		comps_ = 0;
		out_.clear();
		out_pos_ = 0;
		exhausted_ = true;
		s.queue.clear();
		s.pool.clear();
		s.deferred.clear();
		s.discarded.clear();
		NodeId ep;
		int ep_level;
		S5V_RETURN_IF_ERROR(a_.EntryPoint(ep, ep_level));
		if (ep == kNoNode)
			return Status::Ok();
		const float *q = query_.data();
		float ep_d;
		std::uint8_t ep_pass;
		S5V_RETURN_IF_ERROR(a_.Distances(q, &ep, 1, &ep_d, &ep_pass));
		comps_ = 1;
		Cand cur{ep_d, ep};
		bool cur_pass = ep_pass != 0;
		S5V_RETURN_IF_ERROR(GreedyDescend(a_, q, ep_level, 0, cur, cur_pass, cancel_, comps_));
		a_.visited.Reset(a_.VisitedCapacity());
		(void)a_.visited.Insert(cur.id);
		s.queue.push_back(cur);
		if (cur_pass)
			s.pool.push_back(cur);
		exhausted_ = false;
		// The first pass is always complete; max_visits only bounds the widening rounds.
		S5V_RETURN_IF_ERROR(SearchLayer<true>(a_, q, 0, ef_, cancel_, comps_, 0));
		FinishRound();
		return Status::Ok();
	}

	Status Next(Candidate &out, bool &done) override {
		Scratch &s = a_.scratch;
		while (true) {
			if (out_pos_ < out_.size()) {
				out = {out_[out_pos_].d, out_[out_pos_].id};
				++out_pos_;
				done = false;
				return Status::Ok();
			}
			done = true;
			if (exhausted_ || !params_.iterative)
				return Status::Ok();
			if (params_.max_visits != 0 && comps_ >= params_.max_visits)
				return Status::Ok();
			if (s.queue.empty() && s.deferred.empty() && s.discarded.empty()) {
				exhausted_ = true;
				return Status::Ok();
			}
			// Widen: double the bound, requeue what the bound had deferred, refill the pool from the
			// discarded results (nearest first), and continue the best-first search.
			ef_ = std::min<std::size_t>(ef_ * 2, std::size_t{1} << 30);
			for (const Cand &c : s.deferred) {
				s.queue.push_back(c);
				std::push_heap(s.queue.begin(), s.queue.end(), NearestOnTop{});
			}
			s.deferred.clear();
			s.pool.clear();
			if (s.discarded.size() > ef_) {
				std::nth_element(s.discarded.begin(), s.discarded.begin() + static_cast<std::ptrdiff_t>(ef_),
				                 s.discarded.end(), Ascending);
				s.pool.assign(s.discarded.begin(), s.discarded.begin() + static_cast<std::ptrdiff_t>(ef_));
				s.discarded.erase(s.discarded.begin(), s.discarded.begin() + static_cast<std::ptrdiff_t>(ef_));
			} else {
				s.pool.swap(s.discarded);
				s.discarded.clear();
			}
			std::make_heap(s.pool.begin(), s.pool.end(), FarthestOnTop{});
			S5V_RETURN_IF_ERROR(SearchLayer<true>(a_, query_.data(), 0, ef_, cancel_, comps_, params_.max_visits));
			FinishRound();
		}
	}

	std::size_t computations() const override { return comps_; }

private:
	// Hand out this round's pool nearest first.
	void FinishRound() {
		Scratch &s = a_.scratch;
		out_.assign(s.pool.begin(), s.pool.end());
		std::sort(out_.begin(), out_.end(), Ascending);
		out_pos_ = 0;
		s.pool.clear();
	}

	A a_;
	std::size_t dim_;
	const CancelToken &cancel_;
	std::vector<float> query_;
	SearchParams params_;
	std::size_t ef_ = 0;
	std::size_t comps_ = 0;
	std::vector<Cand> out_;
	std::size_t out_pos_ = 0;
	bool exhausted_ = true;
};

// The InMemoryGraph fast paths (hnsw_memory.cpp); hnsw.cpp dispatches to them when the store is one.
Status MemoryLink(InMemoryGraph &g, NodeId node, int level, const float *vec, std::size_t dim, const Params &p,
                  const CancelToken &cancel, bool repair);
std::unique_ptr<SearchEngine> MakeMemorySearchEngine(InMemoryGraph &g, std::size_t dim, const CancelToken &cancel);

Status ValidateParams(const Params &p, int level);

} // namespace s5v::hnsw::internal
