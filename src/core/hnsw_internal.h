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
#include <utility>
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

// Distances for the access types over graphs whose vectors sit in one array (InMemoryGraph, SharedGraph): G has
// Vec(id), Dist(a, b) and stride (floats a vector). The next vector is prefetched while one is computed (up to 8
// cache lines). live(id) gives pass.
template <class G, class Live>
Status ArenaDistances(G *g, const float *q, const NodeId *ids, std::size_t n, float *out, std::uint8_t *pass,
                      Live &&live) {
	const std::size_t lines = std::min<std::size_t>(g->stride / 16, 8);
	for (std::size_t i = 0; i < n; ++i) {
		if (i + 1 < n) {
			const char *next = reinterpret_cast<const char *>(g->Vec(ids[i + 1]));
			for (std::size_t k = 0; k < lines; ++k)
				__builtin_prefetch(next + 64 * k);
		}
		out[i] = g->Dist(q, g->Vec(ids[i]));
		if (pass != nullptr)
			pass[i] = live(ids[i]) ? 1 : 0;
	}
	return Status::Ok();
}

// The heuristic's test on such a graph: is e nearer to the query than to every kept candidate?
template <class G> Status ArenaNearerThanAll(G *g, const Cand &e, const std::vector<Cand> &kept, bool &good) {
	const float *v = g->Vec(e.id);
	good = true;
	for (const Cand &k : kept) {
		if (g->Dist(v, g->Vec(k.id)) <= e.d) {
			good = false;
			break;
		}
	}
	return Status::Ok();
}

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

	std::size_t memory_bytes() const noexcept { return marks_.capacity() * sizeof(std::uint16_t); }

private:
	std::vector<std::uint16_t> marks_;
	std::uint16_t generation_ = 0;
};

// Visited set for sparse 64-bit ids (pages: (block << 16) | offset): open addressing, linear probing.
class HashVisited {
public:
	// How many nodes the next searches are expected to visit (a search sets it from ef_search), so that the table
	// starts large enough instead of growing (and rehashing) several times during every search.
	void Expect(std::size_t visits) noexcept { expected_ = std::min<std::size_t>(visits, std::size_t{1} << 20); }

	void Reset(std::size_t /*capacity_hint*/) {
		unsigned bits = 10;
		while ((std::size_t{1} << bits) < 2 * expected_)
			++bits;
		const std::size_t want = std::size_t{1} << bits;
		if (slots_.size() < want || (slots_.size() > 4 * want && count_ * 8 < slots_.size())) {
			// Start at the expected size, and shrink a table that a previous large search left behind (a new vector:
			// assign would keep the old capacity).
			std::vector<NodeId>(want, kNoNode).swap(slots_);
			shift_ = 64 - bits;
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

	std::size_t memory_bytes() const noexcept { return slots_.capacity() * sizeof(NodeId); }

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
	std::size_t expected_ = 0;
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
	std::vector<NodeId> links;   // a neighbour's current list (back-links)
	std::vector<NodeId> desired; // its replacement
	std::vector<Cand> link_cands;
	std::vector<Cand> pruned;
	std::vector<NodeId> own;        // the linked node's own list at the current level
	std::vector<NodeId> stale;      // what a repair replaces (entries with pass = 0)
	std::vector<NodeId> stale_live; // old entries a repair keeps if there is room
	std::vector<std::pair<NodeId, int>> orphans;
	std::vector<NodeId> pinned; // entries of the linked node's own list that other nodes depend on
	std::vector<float> orphan_vec;
	std::vector<Cand> seeds;
	std::vector<std::uint8_t> seed_pass;
	Cand nearest_walked{std::numeric_limits<float>::infinity(), kNoNode};
	bool nearest_walked_pass = false;
};

inline constexpr unsigned kCancelPollMask = 63; // poll the token every 64 expansions

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
// `max_visits` (0 = none) stops the round once that many distances were computed, `max_memory` (0 = none) once
// the search's buffers (SearchMemoryBytes) take that many bytes.
template <class A> std::size_t SearchMemoryBytes(const A &a) noexcept {
	const Scratch &s = a.scratch;
	return (s.queue.capacity() + s.pool.capacity() + s.deferred.capacity() + s.discarded.capacity()) * sizeof(Cand) +
	       a.visited.memory_bytes();
}

template <bool kKeep, class A>
Status SearchLayer(A &a, const float *q, int level, std::size_t ef, const CancelToken &cancel,
                   std::size_t &computations, std::size_t max_visits, std::size_t max_memory = 0) {
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
		if (max_memory != 0 && SearchMemoryBytes(a) >= max_memory)
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

inline bool Contains(const std::vector<NodeId> &v, NodeId x) noexcept {
	return std::find(v.begin(), v.end(), x) != v.end();
}

inline constexpr int kCasAttempts = 32;          // re-reads of a list that other writers keep changing meanwhile
inline constexpr std::size_t kOrphanBudget = 16; // nodes re-linked per Insert/Repair after an unsafe drop

// What one back-link did to the neighbour's list.
struct BackLinkResult {
	bool kept = false;       // `node` is in the neighbour's list now
	NodeId handed = kNoNode; // dropped from the list; keeps an in-link only once it is in node's own list
	NodeId in_own = kNoNode; // dropped from the list because node's own list links to it (must stay there)
	NodeId orphan = kNoNode; // dropped with no in-link known to remain
	bool gave_up = false;    // the list kept changing: nothing was written
};

// Add `node` (at distance d from `nb`) to the list of `nb` at `level`, as an atomic read-modify-write (retried when
// another writer changed the list in between). A full list is re-selected with the heuristic among its old
// entries and `node` (entries with pass = 0 are dropped); of the entries the heuristic prunes, all are kept but
// one, and that one is chosen so that it keeps an in-link: an entry that `node` links to (`own`), else `node`
// itself when it already has an in-link at this level (`node_linked`) and need not keep this one (`keep_node`
// false), else the farthest pruned entry handed over to node's own list when that can take it (`can_hand`: it has
// room, or an entry that no other node depends on, see AppendOrReplace), else `node`, else the farthest (reported
// as a possible orphan).
template <class A>
Status AddBackLink(A &a, NodeId nb, NodeId node, float d, int level, std::size_t max_links,
                   const std::vector<NodeId> &own, bool can_hand, bool node_linked, bool keep_node,
                   BackLinkResult &res) {
	Scratch &s = a.scratch;
	res = BackLinkResult{};
	for (int attempt = 0; attempt < kCasAttempts; ++attempt) {
		s.links.clear();
		bool present = false;
		S5V_RETURN_IF_ERROR(a.ForEachNeighbor(nb, level, [&](NodeId x) {
			present |= (x == node);
			s.links.push_back(x);
		}));
		if (present) {
			res.kept = true;
			return Status::Ok();
		}
		NodeId victim = kNoNode;
		res.handed = res.orphan = res.in_own = kNoNode;
		if (s.links.size() < max_links) {
			s.desired.assign(s.links.begin(), s.links.end());
			s.desired.push_back(node);
		} else {
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
			S5V_RETURN_IF_ERROR(SelectNeighbors(a, s.link_cands, max_links, s.selected));
			// The pruned entries, nearest first; keep all but as many as the list cannot hold.
			s.pruned.clear();
			for (const Cand &c : s.link_cands) {
				bool kept = false;
				for (const Cand &k : s.selected)
					kept |= (k.id == c.id);
				if (!kept)
					s.pruned.push_back(c);
			}
			const bool drop = s.selected.size() + s.pruned.size() > max_links && !s.pruned.empty();
			if (drop) {
				const bool node_pruned =
				    std::any_of(s.pruned.begin(), s.pruned.end(), [&](const Cand &c) { return c.id == node; });
				// The farthest entry of `list` (sorted nearest first) other than `node` that `ok` accepts.
				auto farthest_in = [&](const auto &list, auto &&ok) -> NodeId {
					for (auto it = list.rbegin(); it != list.rend(); ++it)
						if (it->id != node && ok(it->id))
							return it->id;
					return kNoNode;
				};
				auto farthest = [&](auto &&ok) -> NodeId { return farthest_in(s.pruned, ok); };
				victim = farthest([&](NodeId x) { return Contains(own, x); });
				res.in_own = victim;
				if (victim == kNoNode && node_pruned && node_linked && !keep_node)
					victim = node;
				if (victim == kNoNode && can_hand) {
					victim = farthest([](NodeId) { return true; });
					res.handed = victim;
				}
				if (victim == kNoNode && node_pruned && !keep_node)
					victim = node;
				if (victim == kNoNode) {
					victim = farthest([](NodeId) { return true; });
					res.orphan = victim;
				}
				if (victim == kNoNode && keep_node) {
					// Only `node` was pruned but it must stay: give up a selected entry, the safest farthest.
					auto farthest_sel = [&](auto &&ok) -> NodeId { return farthest_in(s.selected, ok); };
					victim = farthest_sel([&](NodeId x) { return Contains(own, x); });
					res.in_own = victim;
					if (victim == kNoNode && can_hand) {
						victim = farthest_sel([](NodeId) { return true; });
						res.handed = victim;
					}
					if (victim == kNoNode) {
						victim = farthest_sel([](NodeId) { return true; });
						res.orphan = victim;
					}
				}
			}
			s.desired.clear();
			for (const Cand &c : s.selected)
				if (c.id != victim)
					s.desired.push_back(c.id);
			for (const Cand &c : s.pruned)
				if (c.id != victim && s.desired.size() < max_links)
					s.desired.push_back(c.id);
		}
		bool applied = false;
		S5V_RETURN_IF_ERROR(
		    a.CasNeighborIds(nb, level, s.links.data(), s.links.size(), s.desired.data(), s.desired.size(), applied));
		if (applied) {
			res.kept = Contains(s.desired, node);
			return Status::Ok();
		}
	}
	res = BackLinkResult{}; // the list kept changing: leave it (the caller relinks node if it must)
	res.gave_up = true;
	return Status::Ok();
}

// Write node's own list at `level`: `chosen`, then (as room allows) links that other writers added meanwhile,
// except those in `stale` (what a repair replaces). Atomic like AddBackLink.
template <class A>
Status WriteOwnList(A &a, NodeId node, int level, std::size_t cap, const std::vector<NodeId> &chosen,
                    const std::vector<NodeId> &stale) {
	Scratch &s = a.scratch;
	for (int attempt = 0;; ++attempt) {
		s.links.clear();
		S5V_RETURN_IF_ERROR(a.ForEachNeighbor(node, level, [&](NodeId x) { s.links.push_back(x); }));
		// Links other writers added are their nodes' in-links: they all stay; `chosen` gives up its farthest
		// entries when both do not fit (they are reachable anyway).
		s.pruned.clear();
		for (NodeId x : s.links)
			if (x != node && !Contains(chosen, x) && !Contains(stale, x))
				s.pruned.push_back({0.0f, x});
		const std::size_t extra = std::min(s.pruned.size(), cap);
		s.desired.assign(chosen.begin(), chosen.begin() + std::min(chosen.size(), cap - extra));
		for (std::size_t i = 0; i < extra; ++i)
			s.desired.push_back(s.pruned[i].id);
		if (attempt == kCasAttempts)
			return a.SetNeighborIds(node, level, s.desired.data(), s.desired.size());
		bool applied = false;
		S5V_RETURN_IF_ERROR(
		    a.CasNeighborIds(node, level, s.links.data(), s.links.size(), s.desired.data(), s.desired.size(), applied));
		if (applied)
			return Status::Ok();
	}
}

// Append `x` to the list of `node` at `level` if it has room (atomic); `done` tells whether x is in it now.
template <class A> Status AppendIfRoom(A &a, NodeId node, int level, std::size_t cap, NodeId x, bool &done) {
	Scratch &s = a.scratch;
	done = false;
	for (int attempt = 0; attempt < kCasAttempts; ++attempt) {
		s.links.clear();
		S5V_RETURN_IF_ERROR(a.ForEachNeighbor(node, level, [&](NodeId y) { s.links.push_back(y); }));
		if (Contains(s.links, x)) {
			done = true;
			return Status::Ok();
		}
		if (s.links.size() >= cap)
			return Status::Ok();
		s.desired.assign(s.links.begin(), s.links.end());
		s.desired.push_back(x);
		bool applied = false;
		S5V_RETURN_IF_ERROR(
		    a.CasNeighborIds(node, level, s.links.data(), s.links.size(), s.desired.data(), s.desired.size(), applied));
		if (applied) {
			done = true;
			return Status::Ok();
		}
	}
	return Status::Ok();
}

// Put `x` into the list of `node` at `level` (atomic): appended if the list has room, else in place of its last
// entry for which `replaceable` holds (an entry nobody depends on: Insert's own choice on this level, not pinned by
// a back-link). `done` tells whether x is in the list now; `replaced` is the entry it took the place of.
template <class A, class F>
Status AppendOrReplace(A &a, NodeId node, int level, std::size_t cap, NodeId x, F &&replaceable, bool &done,
                       NodeId &replaced) {
	Scratch &s = a.scratch;
	done = false;
	replaced = kNoNode;
	for (int attempt = 0; attempt < kCasAttempts; ++attempt) {
		s.links.clear();
		S5V_RETURN_IF_ERROR(a.ForEachNeighbor(node, level, [&](NodeId y) { s.links.push_back(y); }));
		if (Contains(s.links, x)) {
			done = true;
			return Status::Ok();
		}
		s.desired.assign(s.links.begin(), s.links.end());
		replaced = kNoNode;
		if (s.links.size() < cap) {
			s.desired.push_back(x);
		} else {
			for (std::size_t i = s.desired.size(); i-- > 0;)
				if (replaceable(s.desired[i])) {
					replaced = s.desired[i];
					s.desired[i] = x;
					break;
				}
			if (replaced == kNoNode)
				return Status::Ok();
		}
		bool applied = false;
		S5V_RETURN_IF_ERROR(
		    a.CasNeighborIds(node, level, s.links.data(), s.links.size(), s.desired.data(), s.desired.size(), applied));
		if (applied) {
			done = true;
			return Status::Ok();
		}
	}
	replaced = kNoNode;
	return Status::Ok();
}

// One pass of Insert/Repair: find `node`'s neighbours on levels min(level, entry level) .. 0, link them, add
// back-links; Insert also raises the entry point. Nodes dropped without a known in-link go to s.orphans.
// Relink: only the back-links (to an existing node whose in-link was dropped); its own lists stay as they are, since
// replacing them could drop the only in-link of a node it links to.
enum class LinkMode { Insert, Repair, Relink };

template <class A>
Status LinkNodeOnce(A &a, NodeId node, int level, const float *vec, const Params &p, const CancelToken &cancel,
                    LinkMode mode) {
	const bool repair = mode != LinkMode::Insert;
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
		// A repair replaces the list as it is now; links other writers add during the search are kept.
		// Of the old entries, the live ones are kept as room allows (dropping one could orphan it), the others go.
		s.stale.clear();
		s.stale_live.clear();
		if (mode == LinkMode::Repair) {
			s.links.clear();
			S5V_RETURN_IF_ERROR(a.ForEachNeighbor(node, l, [&](NodeId x) { s.links.push_back(x); }));
			if (!s.links.empty()) {
				s.dists.resize(std::max(s.dists.size(), s.links.size()));
				s.pass.resize(std::max(s.pass.size(), s.links.size()));
				S5V_RETURN_IF_ERROR(a.Distances(vec, s.links.data(), s.links.size(), s.dists.data(), s.pass.data()));
				for (std::size_t i = 0; i < s.links.size(); ++i)
					(s.pass[i] ? s.stale_live : s.stale).push_back(s.links[i]);
			}
		}
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
		const std::size_t n_heuristic = selected.size();
		if (selected.size() < max_links && s.sorted.size() > selected.size()) {
			// Keep pruned connections (as pgvector does): fill the list up to max_links with the nearest
			// candidates the heuristic pruned. With the heuristic's choice alone (hnswlib) lists stay short and
			// a search at the same ef_search finds fewer true neighbours.
			for (const Cand &c : s.sorted) {
				if (selected.size() >= max_links)
					break;
				if (std::none_of(selected.begin(), selected.end(), [&](const Cand &k) { return k.id == c.id; }))
					selected.push_back(c);
			}
		}
		// Back-links reuse s.selected; keep our own copy of this level's choice.
		s.sel_ids.clear();
		s.sel_dists.clear();
		for (const Cand &c : selected) {
			s.sel_ids.push_back(c.id);
			s.sel_dists.push_back(c.d);
		}
		if (mode == LinkMode::Relink) {
			s.own.clear();
			S5V_RETURN_IF_ERROR(a.ForEachNeighbor(node, l, [&](NodeId x) { s.own.push_back(x); }));
		} else {
			S5V_RETURN_IF_ERROR(WriteOwnList(a, node, l, max_links, s.sel_ids, s.stale));
			s.own.assign(s.desired.begin(), s.desired.end());
			for (NodeId x : s.stale_live)
				if (!Contains(s.own, x) && x != ep)
					s.orphans.push_back({x, l});
		}
		// Entries of node's own list that other nodes depend on (a back-link dropped them because node links to
		// them, or handed them over): an Insert may replace the others (its own fresh choice) to take a handed entry.
		s.pinned.clear();
		auto replaceable = [&](NodeId x) {
			return mode == LinkMode::Insert && Contains(s.sel_ids, x) && !Contains(s.pinned, x);
		};
		bool linked = false;
		// Back-links go to the heuristic's choice only, not to the fillers: a back-link to a full list costs a
		// re-selection (O(m^2) distances), and those to fillers doubled the build time for little recall
		// (bench/micro/hnsw_bench: +0.005 at ef 80).
		const std::size_t n_back = n_heuristic;
		for (std::size_t i = 0; i <= n_back; ++i) {
			// After the last neighbour: a node still without an in-link on level 0 forces one from its nearest.
			const bool force = i == n_back;
			if (force && (linked || l != 0 || s.sel_ids.empty()))
				break;
			const std::size_t k = force ? 0 : i;
			BackLinkResult res;
			const bool can_hand = s.own.size() < max_links || std::any_of(s.own.begin(), s.own.end(), replaceable);
			// s.sel_ids / s.sel_dists / s.own / s.pinned are not touched by AddBackLink.
			S5V_RETURN_IF_ERROR(
			    AddBackLink(a, s.sel_ids[k], node, s.sel_dists[k], l, max_links, s.own, can_hand, linked, force, res));
			linked |= res.kept;
			if (res.in_own != kNoNode)
				s.pinned.push_back(res.in_own);
			if (res.handed != kNoNode) {
				bool done = false;
				NodeId replaced = kNoNode;
				S5V_RETURN_IF_ERROR(AppendOrReplace(a, node, l, max_links, res.handed, replaceable, done, replaced));
				if (done) {
					auto it = std::find(s.own.begin(), s.own.end(), replaced);
					if (replaced != kNoNode && it != s.own.end())
						*it = res.handed;
					else
						s.own.push_back(res.handed);
					s.pinned.push_back(res.handed);
				} else {
					res.orphan = res.handed;
				}
			}
			if (res.orphan != kNoNode && res.orphan != ep)
				s.orphans.push_back({res.orphan, l});
			if (force && !res.kept)
				s.orphans.push_back({node, l}); // still without an in-link on level 0: search for it again
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
	if (!repair && level > ep_level) {
		// The old entry point may have no in-link: link it from the new one, so that whatever it reached stays
		// reachable (a full list gives up its last entry, which is then re-linked).
		const std::size_t cap = static_cast<std::size_t>(MaxNeighbors(p, ep_level));
		bool done = false;
		S5V_RETURN_IF_ERROR(AppendIfRoom(a, node, ep_level, cap, ep, done));
		if (!done) {
			s.links.clear();
			S5V_RETURN_IF_ERROR(a.ForEachNeighbor(node, ep_level, [&](NodeId x) { s.links.push_back(x); }));
			if (!s.links.empty()) {
				s.orphans.push_back({s.links.back(), ep_level});
				s.links.back() = ep;
				S5V_RETURN_IF_ERROR(a.SetNeighborIds(node, ep_level, s.links.data(), s.links.size()));
			}
		}
		return a.SetEntryPoint(node, level);
	}
	return Status::Ok();
}

// Insert or Repair `node`, then re-link the nodes that pruning dropped without a known in-link (a few per call):
// into the list of one of their own neighbours that has room, else by a repair of their own.
template <class A>
Status LinkNode(A &a, NodeId node, int level, const float *vec, const Params &p, const CancelToken &cancel,
                LinkMode mode) {
	Scratch &s = a.scratch;
	s.orphans.clear();
	S5V_RETURN_IF_ERROR(LinkNodeOnce(a, node, level, vec, p, cancel, mode));
	for (std::size_t k = 0; k < s.orphans.size() && k < kOrphanBudget; ++k) {
		const NodeId x = s.orphans[k].first;
		const int l = s.orphans[k].second;
		S5V_RETURN_IF_ERROR(a.VectorOf(x, s.orphan_vec));
		S5V_RETURN_IF_ERROR(LinkNodeOnce(a, x, l, s.orphan_vec.data(), p, cancel, LinkMode::Relink));
	}
	return Status::Ok();
}

// VACUUM's cheap repair (as FreshDiskANN consolidates deletes): on each level <= `level`, the entries of node's
// list with pass = 0 are replaced by live neighbours of those entries, chosen with the heuristic against the live
// entries, which all stay (no live node loses an in-link, so nothing is orphaned). No search. `sparse` is set
// when a list ends up less than half full (the caller may then run a search Repair).
template <class A> Status RepairLocalT(A &a, NodeId node, int level, const float *vec, const Params &p, bool &sparse) {
	Scratch &s = a.scratch;
	sparse = false;
	for (int l = 0; l <= level; ++l) {
		const std::size_t cap = static_cast<std::size_t>(MaxNeighbors(p, l));
		for (int attempt = 0; attempt < kCasAttempts; ++attempt) {
			s.links.clear();
			S5V_RETURN_IF_ERROR(a.ForEachNeighbor(node, l, [&](NodeId x) { s.links.push_back(x); }));
			const std::size_t n = s.links.size();
			if (n == 0)
				break;
			s.dists.resize(std::max(s.dists.size(), n));
			s.pass.resize(std::max(s.pass.size(), n));
			S5V_RETURN_IF_ERROR(a.Distances(vec, s.links.data(), n, s.dists.data(), s.pass.data()));
			s.selected.clear();
			s.stale.clear();
			for (std::size_t i = 0; i < n; ++i)
				(s.pass[i] ? (void)s.selected.push_back({s.dists[i], s.links[i]})
				           : (void)s.stale.push_back(s.links[i]));
			if (s.stale.empty())
				break;
			// Candidates: the deleted entries' own neighbours on this level.
			s.ids.clear();
			for (NodeId d : s.stale)
				S5V_RETURN_IF_ERROR(a.ForEachNeighbor(d, l, [&](NodeId x) {
					if (x != node && !Contains(s.links, x) && !Contains(s.ids, x))
						s.ids.push_back(x);
				}));
			s.link_cands.clear();
			if (!s.ids.empty()) {
				s.sel_dists.resize(s.ids.size());
				s.seed_pass.resize(s.ids.size());
				S5V_RETURN_IF_ERROR(
				    a.Distances(vec, s.ids.data(), s.ids.size(), s.sel_dists.data(), s.seed_pass.data()));
				for (std::size_t i = 0; i < s.ids.size(); ++i)
					if (s.seed_pass[i])
						s.link_cands.push_back({s.sel_dists[i], s.ids[i]});
				std::sort(s.link_cands.begin(), s.link_cands.end(), AscendingFrom{node});
			}
			std::sort(s.selected.begin(), s.selected.end(), AscendingFrom{node});
			const std::size_t kept = s.selected.size();
			s.pruned.clear();
			for (const Cand &c : s.link_cands) {
				if (s.selected.size() >= cap)
					break;
				bool good = true;
				if (!s.selected.empty())
					S5V_RETURN_IF_ERROR(a.NearerThanAll(c, s.selected, good));
				(good ? s.selected : s.pruned).push_back(c);
			}
			for (const Cand &c : s.pruned)
				if (s.selected.size() < cap)
					s.selected.push_back(c);
			std::sort(s.selected.begin() + static_cast<std::ptrdiff_t>(kept), s.selected.end(), AscendingFrom{node});
			s.desired.clear();
			for (const Cand &c : s.selected)
				s.desired.push_back(c.id);
			bool applied = false;
			S5V_RETURN_IF_ERROR(
			    a.CasNeighborIds(node, l, s.links.data(), n, s.desired.data(), s.desired.size(), applied));
			if (applied) {
				sparse |= s.desired.size() * 2 < cap;
				break;
			}
		}
	}
	return Status::Ok();
}

// Nodes a search visits (distances computed) per unit of ef_search, about, at m = 16 (bench/micro/hnsw_bench, 20k x
// 128: 46 / 37 / 30 / 25 / 22 at ef 10 / 20 / 40 / 80 / 160): sizes the visited table up front.
inline constexpr std::size_t kVisitsPerEf = 24;

// A resumable query (the engine behind Searcher), one instantiation per access type.
class SearchEngine {
public:
	virtual ~SearchEngine() = default;
	virtual Status Start(const float *query, const SearchParams &params) = 0;
	virtual Status Next(Candidate &out, bool &done) = 0;
	virtual std::size_t computations() const = 0;
	virtual std::size_t memory_bytes() const = 0;
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
		if constexpr (requires { a_.visited.Expect(std::size_t{}); })
			a_.visited.Expect(ef_ * kVisitsPerEf);
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
			if ((params_.max_visits != 0 && comps_ >= params_.max_visits) ||
			    (params_.max_memory != 0 && memory_bytes() >= params_.max_memory)) {
				// A limit is reached: stop exploring, hand out what was found already (nearest first), then end
				// (pgvector's meaning of hnsw.max_scan_tuples and hnsw.scan_mem_multiplier).
				exhausted_ = true;
				if (s.discarded.empty())
					return Status::Ok();
				out_.swap(s.discarded);
				s.discarded.clear();
				std::sort(out_.begin(), out_.end(), Ascending);
				out_pos_ = 0;
				continue;
			}
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
			S5V_RETURN_IF_ERROR(
			    SearchLayer<true>(a_, query_.data(), 0, ef_, cancel_, comps_, params_.max_visits, params_.max_memory));
			FinishRound();
		}
	}

	std::size_t computations() const override { return comps_; }

	// The search's buffers (queues, results, the visited set), as allocated.
	std::size_t memory_bytes() const override { return SearchMemoryBytes(a_) + out_.capacity() * sizeof(Cand); }

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
                  const CancelToken &cancel, LinkMode mode);
std::unique_ptr<SearchEngine> MakeMemorySearchEngine(InMemoryGraph &g, std::size_t dim, const CancelToken &cancel);

Status ValidateParams(const Params &p, int level);
Status MemoryRepairLocal(InMemoryGraph &g, NodeId node, int level, const float *vec, const Params &p, bool &sparse);

} // namespace s5v::hnsw::internal
