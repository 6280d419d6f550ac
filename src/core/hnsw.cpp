// HNSW over the virtual GraphStore interface (the page store) and the public entry points, which dispatch to the
// devirtualised InMemoryGraph instantiation when they are given one.
#include "hnsw.h"

#include <algorithm>
#include <cmath>
#include <new>
#include <unordered_map>

#include "hnsw_internal.h"

namespace s5v::hnsw {

int RandomLevel(int m, std::uint64_t random_bits) noexcept {
	if (m < 2)
		return 0;
	// U in (0, 1]: the top 53 bits plus one, scaled.
	const double u = static_cast<double>((random_bits >> 11) + 1) * (1.0 / 9007199254740992.0);
	const double level = std::floor(-std::log(u) / std::log(static_cast<double>(m)));
	if (!(level < kMaxLevel))
		return kMaxLevel;
	return level < 0 ? 0 : static_cast<int>(level);
}

Status MutableGraphStore::CompareAndSetNeighbors(NodeId node, int level, std::span<const NodeId> expected,
                                                 std::span<const NodeId> desired, bool &applied) {
	applied = false;
	std::vector<NodeId> current;
	S5V_RETURN_IF_ERROR(Neighbors(node, level, current));
	if (!std::equal(current.begin(), current.end(), expected.begin(), expected.end()))
		return Status::Ok();
	S5V_RETURN_IF_ERROR(SetNeighbors(node, level, desired));
	applied = true;
	return Status::Ok();
}

namespace internal {

Status ValidateParams(const Params &p, int level) {
	if (p.m < 2 || p.m > 1000)
		return Status::InvalidInput("hnsw m must be between 2 and 1000");
	if (p.ef_construction < 1)
		return Status::InvalidInput("hnsw ef_construction must be at least 1");
	if (level < 0 || level > kMaxLevel)
		return Status::InvalidInput("hnsw node level out of range");
	return Status::Ok();
}

namespace {

// Access through the virtual interface: neighbours are copied into a buffer, distances computed by the store.
struct GenericAccess {
	GenericAccess(GraphStore *s, MutableGraphStore *ms) : store(s), mstore(ms) {}

	GraphStore *store;
	MutableGraphStore *mstore; // null for searches
	HashVisited visited;
	Scratch scratch;
	std::vector<NodeId> nbuf;
	std::vector<NodeId> pair_ids;
	std::vector<float> pair_dists;
	std::vector<float> vbuf;

	std::size_t VisitedCapacity() const { return 0; }

	Status EntryPoint(NodeId &node, int &level) { return store->EntryPoint(node, level); }

	template <class F> Status ForEachNeighbor(NodeId node, int level, F &&f) {
		S5V_RETURN_IF_ERROR(store->Neighbors(node, level, nbuf));
		for (NodeId n : nbuf)
			if (n != kNoNode)
				f(n);
		return Status::Ok();
	}

	Status Distances(const float *q, const NodeId *ids, std::size_t n, float *out, std::uint8_t *pass) {
		return store->Distances(q, std::span<const NodeId>(ids, n), std::span<float>(out, n),
		                        std::span<std::uint8_t>(pass, n));
	}

	// Distances from the stored vector of `from` to `ids` (pass filled).
	Status StoredDistances(NodeId from, const NodeId *ids, std::size_t n, float *out, std::uint8_t *pass) {
		S5V_RETURN_IF_ERROR(store->Vector(from, vbuf));
		return Distances(vbuf.data(), ids, n, out, pass);
	}

	// good = e is nearer to the base node (e.d) than to every node of `kept`.
	Status NearerThanAll(const Cand &e, const std::vector<Cand> &kept, bool &good) {
		S5V_RETURN_IF_ERROR(store->Vector(e.id, vbuf));
		pair_ids.clear();
		for (const Cand &k : kept)
			pair_ids.push_back(k.id);
		pair_dists.resize(pair_ids.size());
		S5V_RETURN_IF_ERROR(store->Distances(vbuf.data(), pair_ids, pair_dists, {}));
		good = true;
		for (float d : pair_dists) {
			if (d <= e.d) {
				good = false;
				break;
			}
		}
		return Status::Ok();
	}

	Status SetNeighborIds(NodeId node, int level, const NodeId *ids, std::size_t n) {
		return mstore->SetNeighbors(node, level, std::span<const NodeId>(ids, n));
	}
	Status SetNeighborCands(NodeId node, int level, const Cand *c, std::size_t n) {
		pair_ids.clear();
		for (std::size_t i = 0; i < n; ++i)
			pair_ids.push_back(c[i].id);
		return mstore->SetNeighbors(node, level, pair_ids);
	}
	Status SetEntryPoint(NodeId node, int level) { return mstore->SetEntryPoint(node, level); }
	Status CasNeighborIds(NodeId node, int level, const NodeId *expected, std::size_t n_expected, const NodeId *desired,
	                      std::size_t n_desired, bool &applied) {
		return mstore->CompareAndSetNeighbors(node, level, std::span<const NodeId>(expected, n_expected),
		                                      std::span<const NodeId>(desired, n_desired), applied);
	}
	Status VectorOf(NodeId node, std::vector<float> &out) { return store->Vector(node, out); }
};

Status LinkAny(MutableGraphStore &store, NodeId node, int level, const float *vec, std::size_t dim,
               const Params &params, const CancelToken &cancel, LinkMode mode) noexcept {
	try {
		S5V_RETURN_IF_ERROR(ValidateParams(params, level));
		if (vec == nullptr || dim == 0)
			return Status::InvalidInput("hnsw insert needs a vector");
		if (auto *mem = dynamic_cast<InMemoryGraph *>(&store))
			return MemoryLink(*mem, node, level, vec, dim, params, cancel, mode);
		GenericAccess a(&store, &store);
		return LinkNode(a, node, level, vec, params, cancel, mode);
	} catch (const std::bad_alloc &) {
		return Status::OutOfMemory("out of memory in hnsw insert");
	} catch (...) {
		return Status::Internal("unexpected exception in hnsw insert");
	}
}

} // namespace

} // namespace internal

Status Insert(MutableGraphStore &store, NodeId node, int level, const float *vec, std::size_t dim, const Params &params,
              const CancelToken &cancel) {
	return internal::LinkAny(store, node, level, vec, dim, params, cancel, internal::LinkMode::Insert);
}

Status Repair(MutableGraphStore &store, NodeId node, int level, const float *vec, std::size_t dim, const Params &params,
              const CancelToken &cancel) {
	return internal::LinkAny(store, node, level, vec, dim, params, cancel, internal::LinkMode::Repair);
}

Status RepairLocal(MutableGraphStore &store, NodeId node, int level, const float *vec, std::size_t dim,
                   const Params &params, bool &sparse) {
	sparse = false;
	try {
		S5V_RETURN_IF_ERROR(internal::ValidateParams(params, level));
		if (vec == nullptr || dim == 0)
			return Status::InvalidInput("hnsw repair needs a vector");
		if (auto *mem = dynamic_cast<InMemoryGraph *>(&store))
			return internal::MemoryRepairLocal(*mem, node, level, vec, params, sparse);
		internal::GenericAccess a(&store, &store);
		return internal::RepairLocalT(a, node, level, vec, params, sparse);
	} catch (const std::bad_alloc &) {
		return Status::OutOfMemory("out of memory in hnsw repair");
	} catch (...) {
		return Status::Internal("unexpected exception in hnsw repair");
	}
}

Status Relink(MutableGraphStore &store, NodeId node, int level, const float *vec, std::size_t dim, const Params &params,
              const CancelToken &cancel) {
	return internal::LinkAny(store, node, level, vec, dim, params, cancel, internal::LinkMode::Relink);
}

Status FindUnreachable(std::span<const std::uint32_t> offsets, std::span<const std::uint32_t> targets,
                       std::uint32_t entry, std::span<const std::uint8_t> live, std::vector<std::uint32_t> &out) {
	try {
		out.clear();
		if (offsets.empty())
			return Status::Ok();
		const std::size_t n = offsets.size() - 1;
		if (live.size() != n || offsets[n] > targets.size())
			return Status::InvalidInput("graph arrays do not agree");
		std::vector<std::uint8_t> seen(n, 0);
		std::vector<std::uint32_t> stack;
		if (entry < n) {
			seen[entry] = 1;
			stack.push_back(entry);
		}
		while (!stack.empty()) {
			std::uint32_t cur = stack.back();
			stack.pop_back();
			for (std::uint32_t k = offsets[cur]; k < offsets[cur + 1]; ++k) {
				std::uint32_t t = targets[k];
				if (t < n && !seen[t]) {
					seen[t] = 1;
					stack.push_back(t);
				}
			}
		}
		for (std::size_t i = 0; i < n; ++i)
			if (live[i] && !seen[i])
				out.push_back(static_cast<std::uint32_t>(i));
		return Status::Ok();
	} catch (const std::bad_alloc &) {
		return Status::OutOfMemory("out of memory while checking graph connectivity");
	}
}

Status ForceLinks(MutableGraphStore &store, const Params &params, std::span<const std::uint32_t> offsets,
                  std::span<const std::uint32_t> targets, std::span<const NodeId> ids, std::uint32_t entry,
                  std::span<const std::uint32_t> orphans) {
	try {
		if (offsets.empty())
			return Status::Ok();
		const std::size_t n = offsets.size() - 1;
		if (ids.size() != n || offsets[n] > targets.size())
			return Status::InvalidInput("graph arrays do not agree");
		std::vector<std::uint8_t> reach(n, 0);
		std::vector<std::uint32_t> in_degree(n, 0), stack;
		for (std::size_t k = 0; k < offsets[n]; ++k)
			if (targets[k] < n)
				in_degree[targets[k]]++;
		auto mark_from = [&](std::uint32_t start) {
			if (start >= n || reach[start])
				return;
			reach[start] = 1;
			stack.push_back(start);
			while (!stack.empty()) {
				std::uint32_t cur = stack.back();
				stack.pop_back();
				for (std::uint32_t k = offsets[cur]; k < offsets[cur + 1]; ++k)
					if (targets[k] < n && !reach[targets[k]]) {
						reach[targets[k]] = 1;
						stack.push_back(targets[k]);
					}
			}
		};
		mark_from(entry);
		std::unordered_map<NodeId, std::uint32_t> index_of;
		index_of.reserve(n);
		for (std::size_t i = 0; i < n; ++i)
			index_of.emplace(ids[i], static_cast<std::uint32_t>(i));
		const std::size_t cap0 = static_cast<std::size_t>(MaxNeighbors(params, 0));
		std::vector<NodeId> list;
		for (int pass = 0; pass < 2; ++pass) {
			for (std::uint32_t o : orphans) {
				if (o >= n || reach[o])
					continue;
				std::uint32_t host = static_cast<std::uint32_t>(n);
				for (std::uint32_t k = offsets[o]; k < offsets[o + 1] && host == n; ++k)
					if (targets[k] < n && reach[targets[k]])
						host = targets[k];
				if (host == n)
					continue;
				S5V_RETURN_IF_ERROR(store.Neighbors(ids[host], 0, list));
				if (list.size() < cap0) {
					list.push_back(ids[o]);
				} else {
					std::size_t best = list.size();
					for (std::size_t i = 0; i < list.size(); ++i) {
						auto it = index_of.find(list[i]);
						if (it == index_of.end() || in_degree[it->second] < 2)
							continue;
						if (best == list.size() || in_degree[it->second] > in_degree[index_of[list[best]]])
							best = i;
					}
					if (best == list.size())
						continue;
					in_degree[index_of[list[best]]]--;
					list[best] = ids[o];
				}
				S5V_RETURN_IF_ERROR(store.SetNeighbors(ids[host], 0, list));
				in_degree[o]++;
				mark_from(o);
			}
		}
		return Status::Ok();
	} catch (const std::bad_alloc &) {
		return Status::OutOfMemory("out of memory while linking orphans");
	}
}

struct Searcher::State {
	GraphStore &store;
	std::size_t dim;
	const CancelToken &cancel;
	std::unique_ptr<internal::SearchEngine> engine;
};

Searcher::Searcher(GraphStore &store, std::size_t dim, const CancelToken &cancel)
    : state_(new (std::nothrow) State{store, dim, cancel, nullptr}) {}

Searcher::~Searcher() {
	delete state_;
}

Status Searcher::Start(const float *query, const SearchParams &params) {
	if (state_ == nullptr)
		return Status::OutOfMemory("out of memory in hnsw search");
	if (query == nullptr || state_->dim == 0)
		return Status::InvalidInput("hnsw search needs a query vector");
	try {
		if (!state_->engine) {
			if (auto *mem = dynamic_cast<InMemoryGraph *>(&state_->store)) {
				if (mem->dim() != state_->dim)
					return Status::InvalidInput("query dimensions do not match the graph");
				state_->engine = internal::MakeMemorySearchEngine(*mem, state_->dim, state_->cancel);
			} else {
				state_->engine = std::make_unique<internal::SearchEngineT<internal::GenericAccess>>(
				    state_->dim, state_->cancel, &state_->store, nullptr);
			}
		}
		return state_->engine->Start(query, params);
	} catch (const std::bad_alloc &) {
		return Status::OutOfMemory("out of memory in hnsw search");
	} catch (...) {
		return Status::Internal("unexpected exception in hnsw search");
	}
}

Status Searcher::Next(Candidate &out, bool &done) {
	done = true;
	if (state_ == nullptr)
		return Status::OutOfMemory("out of memory in hnsw search");
	if (!state_->engine)
		return Status::Ok(); // not started
	try {
		return state_->engine->Next(out, done);
	} catch (const std::bad_alloc &) {
		done = true;
		return Status::OutOfMemory("out of memory in hnsw search");
	} catch (...) {
		done = true;
		return Status::Internal("unexpected exception in hnsw search");
	}
}

std::size_t Searcher::distance_computations() const {
	return (state_ != nullptr && state_->engine) ? state_->engine->computations() : 0;
}

std::size_t Searcher::memory_bytes() const {
	return (state_ != nullptr && state_->engine) ? state_->engine->memory_bytes() : 0;
}

} // namespace s5v::hnsw
