// HNSW algorithm on the in-memory store and through the virtual GraphStore interface.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "hnsw.h"

namespace s5v::hnsw {
namespace {

// splitmix64: the random bits for levels, deterministic.
std::uint64_t SplitMix(std::uint64_t &state) {
	std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

// n points around `clusters` Gaussian centres.
std::vector<float> Clustered(std::size_t n, std::size_t dim, std::size_t clusters, std::uint32_t seed, bool normalise) {
	std::mt19937 rng(seed);
	std::normal_distribution<float> centre(0.0f, 1.0f), noise(0.0f, 0.35f);
	std::vector<float> centres(clusters * dim);
	for (float &c : centres)
		c = centre(rng);
	std::vector<float> data(n * dim);
	for (std::size_t i = 0; i < n; ++i) {
		const std::size_t c = rng() % clusters;
		float norm = 0;
		for (std::size_t j = 0; j < dim; ++j) {
			data[i * dim + j] = centres[c * dim + j] + noise(rng);
			norm += data[i * dim + j] * data[i * dim + j];
		}
		if (normalise) {
			norm = std::sqrt(norm);
			for (std::size_t j = 0; j < dim; ++j)
				data[i * dim + j] /= norm;
		}
	}
	return data;
}

float RefDistance(Metric m, const float *a, const float *b, std::size_t dim) {
	double s = 0;
	for (std::size_t j = 0; j < dim; ++j) {
		switch (m) {
		case Metric::L2:
			s += double(a[j] - b[j]) * double(a[j] - b[j]);
			break;
		case Metric::InnerProduct:
		case Metric::Cosine:
			s -= double(a[j]) * double(b[j]);
			break;
		case Metric::L1:
			s += std::fabs(double(a[j] - b[j]));
			break;
		}
	}
	return static_cast<float>(s);
}

std::vector<NodeId> ExactTopK(Metric m, const std::vector<float> &data, std::size_t dim, const float *q, std::size_t k,
                              const std::vector<bool> *exclude = nullptr) {
	const std::size_t n = data.size() / dim;
	std::vector<std::pair<float, NodeId>> all;
	for (std::size_t i = 0; i < n; ++i)
		if (!exclude || !(*exclude)[i])
			all.push_back({RefDistance(m, q, &data[i * dim], dim), i});
	std::partial_sort(all.begin(), all.begin() + std::min(k, all.size()), all.end());
	std::vector<NodeId> out;
	for (std::size_t i = 0; i < std::min(k, all.size()); ++i)
		out.push_back(all[i].second);
	return out;
}

std::unique_ptr<InMemoryGraph> Build(const std::vector<float> &data, std::size_t dim, Metric metric,
                                     const Params &params, std::uint64_t seed = 42) {
	auto g = std::make_unique<InMemoryGraph>(dim, metric, params);
	NeverCancel never;
	std::uint64_t state = seed;
	for (std::size_t i = 0; i < data.size() / dim; ++i) {
		NodeId id;
		Status st = g->AddAndInsert(&data[i * dim], SplitMix(state), never, id);
		EXPECT_TRUE(st.ok()) << st.message();
		EXPECT_EQ(id, i);
	}
	return g;
}

std::vector<Candidate> Search(GraphStore &store, std::size_t dim, const float *q, std::size_t k, int ef,
                              bool iterative = false, std::size_t max_visits = 0) {
	NeverCancel never;
	Searcher s(store, dim, never);
	SearchParams sp;
	sp.ef_search = ef;
	sp.iterative = iterative;
	sp.max_visits = max_visits;
	EXPECT_TRUE(s.Start(q, sp).ok());
	std::vector<Candidate> out;
	while (out.size() < k) {
		Candidate c;
		bool done;
		EXPECT_TRUE(s.Next(c, done).ok());
		if (done)
			break;
		out.push_back(c);
	}
	return out;
}

double Recall(GraphStore &store, Metric metric, const std::vector<float> &data, const std::vector<float> &queries,
              std::size_t dim, int ef, const std::vector<bool> *exclude = nullptr) {
	const std::size_t nq = queries.size() / dim;
	std::size_t hits = 0, total = 0;
	for (std::size_t qi = 0; qi < nq; ++qi) {
		const float *q = &queries[qi * dim];
		auto truth = ExactTopK(metric, data, dim, q, 10, exclude);
		auto got = Search(store, dim, q, 10, ef);
		std::set<NodeId> g;
		for (auto &c : got)
			g.insert(c.node);
		for (NodeId t : truth)
			hits += g.count(t);
		total += truth.size();
	}
	return double(hits) / double(total);
}

// Every node reachable from the entry point on level 0.
std::size_t Reachable(InMemoryGraph &g) {
	NodeId ep;
	int lvl;
	EXPECT_TRUE(g.EntryPoint(ep, lvl).ok());
	if (ep == kNoNode)
		return 0;
	std::vector<bool> seen(g.size());
	std::vector<NodeId> stack{ep};
	seen[ep] = true;
	std::size_t count = 1;
	while (!stack.empty()) {
		NodeId n = stack.back();
		stack.pop_back();
		for (std::uint32_t x : g.neighbor_ids(n, 0))
			if (!seen[x]) {
				seen[x] = true;
				++count;
				stack.push_back(x);
			}
	}
	return count;
}

class MetricRecall : public ::testing::TestWithParam<Metric> {};

TEST_P(MetricRecall, RecallAt10IsHigh) {
	const Metric metric = GetParam();
	const std::size_t dim = 32, n = 10000;
	const bool norm = metric == Metric::Cosine;
	auto data = Clustered(n, dim, 50, 1, norm);
	std::vector<float> queries;
	{
		// Queries: data points perturbed, so they lie in the data's clusters.
		std::mt19937 rng(7);
		std::normal_distribution<float> noise(0.0f, 0.1f);
		for (std::size_t qi = 0; qi < 100; ++qi) {
			const std::size_t src = (qi * 97) % n;
			float nn = 0;
			for (std::size_t j = 0; j < dim; ++j) {
				queries.push_back(data[src * dim + j] + noise(rng));
				nn += queries.back() * queries.back();
			}
			if (norm)
				for (std::size_t j = 0; j < dim; ++j)
					queries[qi * dim + j] /= std::sqrt(nn);
		}
	}
	Params p;
	p.m = 16;
	p.ef_construction = 64;
	auto g = Build(data, dim, metric, p);
	// Inner product is not a metric: small-norm points are nobody's near neighbour and end up unreachable
	// (as in hnswlib and pgvector). The other metrics must keep every node reachable.
	if (metric != Metric::InnerProduct) {
		EXPECT_EQ(Reachable(*g), n);
	}
	const double r = Recall(*g, metric, data, queries, dim, 64);
	EXPECT_GE(r, 0.95) << "metric " << int(metric);
}

INSTANTIATE_TEST_SUITE_P(AllMetrics, MetricRecall,
                         ::testing::Values(Metric::L2, Metric::InnerProduct, Metric::Cosine, Metric::L1));

// Graphs of 256 dimensions and more are built on half-precision copies of the vectors on CPUs with F16C (the
// build's distances read half the bytes); the float vectors stay, and searches of the built graph use them.
bool CpuBuildsOnHalves() {
#if defined(__x86_64__)
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
	return false;
#endif
}

// Queries near data points (not in the data).
std::vector<float> NearQueries(const std::vector<float> &data, std::size_t dim, std::size_t nq, float spread) {
	const std::size_t n = data.size() / dim;
	std::mt19937 rng(11);
	std::normal_distribution<float> noise(0.0f, spread);
	std::vector<float> q;
	for (std::size_t qi = 0; qi < nq; ++qi)
		for (std::size_t j = 0; j < dim; ++j)
			q.push_back(data[((qi * 97) % n) * dim + j] + noise(rng));
	return q;
}

class HalfBuild : public ::testing::TestWithParam<Metric> {};

TEST_P(HalfBuild, HighDimensionalRecallAndStoredVectors) {
	const Metric metric = GetParam();
	const std::size_t dim = 256, n = 1024, nq = 20;
	auto data = Clustered(n, dim, 20, 21, metric == Metric::Cosine);
	auto queries = NearQueries(data, dim, nq, 0.05f);
	if (metric == Metric::Cosine)
		for (std::size_t qi = 0; qi < nq; ++qi) {
			float nn = 0;
			for (std::size_t j = 0; j < dim; ++j)
				nn += queries[qi * dim + j] * queries[qi * dim + j];
			for (std::size_t j = 0; j < dim; ++j)
				queries[qi * dim + j] /= std::sqrt(nn);
		}
	Params p;
	p.m = 16;
	p.ef_construction = 64;
	auto g = Build(data, dim, metric, p);
	// The half copies are there (4 + 2 bytes a dimension) exactly when the CPU can use them (n a power of two: the
	// arrays' capacity is n vectors).
	if (CpuBuildsOnHalves())
		EXPECT_GT(g->memory_bytes(), n * dim * 6);
	else
		EXPECT_LT(g->memory_bytes(), n * dim * 5);
	// The stored vectors are the floats given, bit for bit.
	for (std::size_t i = 0; i < n; i += 97)
		EXPECT_EQ(std::memcmp(g->vector_data(i), &data[i * dim], dim * sizeof(float)), 0) << i;
	// Search distances are exact (computed on the floats).
	auto r = Search(*g, dim, &queries[0], 5, 40);
	ASSERT_EQ(r.size(), 5u);
	for (const Candidate &c : r) {
		const float exact = RefDistance(metric, &queries[0], g->vector_data(c.node), dim);
		EXPECT_NEAR(c.distance, exact, 1e-5f * std::max(1.0f, std::fabs(exact)));
	}
	EXPECT_EQ(Reachable(*g), n);
	EXPECT_GE(Recall(*g, metric, data, queries, dim, 64), 0.97);
}

INSTANTIATE_TEST_SUITE_P(Metrics, HalfBuild, ::testing::Values(Metric::L2, Metric::Cosine));

// Vectors that half precision cannot hold (components beyond 65504, here about 3e5): the graph drops its half
// copies and builds on the floats. With the half copies the distances would be infinite and the graph random.
TEST(Hnsw, HalfBuildOffForLargeValues) {
	const std::size_t dim = 256, n = 1024;
	auto data = Clustered(n, dim, 20, 23, false);
	for (float &x : data)
		x *= 1e5f;
	auto queries = NearQueries(data, dim, 20, 5e3f);
	Params p;
	auto g = Build(data, dim, Metric::L2, p);
	EXPECT_LT(g->memory_bytes(), n * dim * 5);
	EXPECT_EQ(Reachable(*g), n);
	EXPECT_GE(Recall(*g, Metric::L2, data, queries, dim, 64), 0.97);
}

// One such vector in the middle of a build turns the half copies off from there on; the graph stays good.
TEST(Hnsw, HalfBuildOffMidBuild) {
	const std::size_t dim = 256, n = 1024;
	auto data = Clustered(n, dim, 20, 25, false);
	data[700 * dim + 3] = 1e6f; // one component beyond the half range
	auto queries = NearQueries(data, dim, 20, 0.05f);
	auto g = Build(data, dim, Metric::L2, Params{});
	EXPECT_LT(g->memory_bytes(), n * dim * 5);
	EXPECT_EQ(Reachable(*g), n);
	EXPECT_GE(Recall(*g, Metric::L2, data, queries, dim, 64), 0.97);
}

// Dropping the copies mid-build (the glue does when maintenance_work_mem runs out): memory shrinks, the build goes on
// with float distances and the graph stays good.
TEST(Hnsw, DropBuildCopiesMidBuild) {
	const std::size_t dim = 256, n = 1024;
	auto data = Clustered(n, dim, 20, 29, false);
	auto queries = NearQueries(data, dim, 20, 0.05f);
	auto g = std::make_unique<InMemoryGraph>(dim, Metric::L2, Params{});
	NeverCancel never;
	std::uint64_t state = 42;
	for (std::size_t i = 0; i < n; ++i) {
		if (i == 500) {
			const std::size_t before = g->memory_bytes(), copies = g->build_copy_bytes();
			EXPECT_EQ(copies > 0, CpuBuildsOnHalves());
			g->DropBuildCopies();
			EXPECT_EQ(g->build_copy_bytes(), 0u);
			EXPECT_EQ(g->memory_bytes(), before - copies);
		}
		NodeId id;
		ASSERT_TRUE(g->AddAndInsert(&data[i * dim], SplitMix(state), never, id).ok());
	}
	EXPECT_EQ(g->build_copy_bytes(), 0u);
	EXPECT_EQ(Reachable(*g), n);
	EXPECT_GE(Recall(*g, Metric::L2, data, queries, dim, 64), 0.97);
}

// Vectors whose components are all tiny (below 2^-10) would lose their precision in half: floats again.
TEST(Hnsw, HalfBuildOffForTinyVectors) {
	const std::size_t dim = 256, n = 1024;
	auto data = Clustered(n, dim, 20, 27, false);
	for (float &x : data)
		x *= 1e-5f;
	auto queries = NearQueries(data, dim, 20, 5e-7f);
	auto g = Build(data, dim, Metric::L2, Params{});
	EXPECT_LT(g->memory_bytes(), n * dim * 5);
	EXPECT_GE(Recall(*g, Metric::L2, data, queries, dim, 64), 0.97);
}

TEST(Hnsw, EmptyGraphSearchIsDone) {
	InMemoryGraph g(4, Metric::L2, Params{});
	float q[4] = {1, 2, 3, 4};
	auto r = Search(g, 4, q, 10, 40, true);
	EXPECT_TRUE(r.empty());
}

TEST(Hnsw, SingleNode) {
	InMemoryGraph g(4, Metric::L2, Params{});
	float v[4] = {1, 0, 0, 0};
	NodeId id;
	NeverCancel never;
	ASSERT_TRUE(g.AddAndInsert(v, 123, never, id).ok());
	float q[4] = {0, 0, 0, 0};
	auto r = Search(g, 4, q, 10, 40, true);
	ASSERT_EQ(r.size(), 1u);
	EXPECT_EQ(r[0].node, id);
	EXPECT_FLOAT_EQ(r[0].distance, 1.0f);
}

TEST(Hnsw, DuplicateVectors) {
	const std::size_t dim = 8, n = 300;
	std::vector<float> data(n * dim, 0.5f);
	for (std::size_t i = 200; i < n; ++i)
		data[i * dim] = float(i); // some distinct points after many duplicates
	Params p;
	p.m = 4;
	auto g = Build(data, dim, Metric::L2, p);
	// Exact duplicates fill each other's lists; ties are broken per node pseudo-randomly and the heuristic
	// treats a duplicate of a kept neighbour as redundant, which keeps most (not all) of them reachable.
	// Stores should merge exact duplicates into one element (as pgvector does) rather than rely on this.
	EXPECT_GE(Reachable(*g), n * 8 / 10);
	std::vector<float> q(dim, 0.5f);
	auto r = Search(*g, dim, q.data(), 1000, 10, true);
	ASSERT_GE(r.size(), 10u);
	for (std::size_t i = 0; i < 10; ++i) {
		EXPECT_EQ(r[i].distance, 0.0f);
		EXPECT_LT(r[i].node, 200u);
	}
	std::set<NodeId> uniq;
	for (auto &c : r)
		uniq.insert(c.node);
	EXPECT_EQ(uniq.size(), r.size()); // never twice
	// The distinct points are all found.
	std::size_t distinct = 0;
	for (auto &c : r)
		distinct += c.node >= 200;
	EXPECT_EQ(distinct, 100u);
}

TEST(Hnsw, ListBoundsAndNoSelfLinks) {
	const std::size_t dim = 16, n = 3000;
	auto data = Clustered(n, dim, 20, 3, false);
	Params p;
	p.m = 8;
	p.ef_construction = 40;
	auto g = Build(data, dim, Metric::L2, p);
	NodeId ep;
	int ep_level;
	ASSERT_TRUE(g->EntryPoint(ep, ep_level).ok());
	int max_level = 0;
	for (NodeId i = 0; i < n; ++i) {
		max_level = std::max(max_level, g->level(i));
		for (int l = 0; l <= g->level(i); ++l) {
			auto nb = g->neighbors_view(i, l);
			EXPECT_LE(nb.size(), std::size_t(MaxNeighbors(p, l)));
			std::set<NodeId> uniq(nb.begin(), nb.end());
			EXPECT_EQ(uniq.size(), nb.size()) << "duplicate link";
			for (NodeId x : nb) {
				EXPECT_NE(x, i) << "self link";
				EXPECT_LT(x, n);
				EXPECT_GE(g->level(x), l) << "link to a node without that level";
			}
		}
	}
	EXPECT_EQ(ep_level, max_level);
	EXPECT_EQ(g->level(ep), max_level);
	EXPECT_GT(g->memory_bytes(), n * dim * sizeof(float));
}

TEST(Hnsw, IterativeReturnsEveryNodeOnce) {
	const std::size_t dim = 8, n = 500;
	auto data = Clustered(n, dim, 10, 5, false);
	Params p;
	p.m = 6;
	p.ef_construction = 32;
	auto g = Build(data, dim, Metric::L2, p);
	NeverCancel never;
	Searcher s(*g, dim, never);
	SearchParams sp;
	sp.ef_search = 10;
	sp.iterative = true;
	ASSERT_TRUE(s.Start(&data[0], sp).ok());
	std::set<NodeId> seen;
	std::size_t count = 0;
	float prev = -1e30f;
	std::size_t first_round_in_order = 0;
	while (true) {
		Candidate c;
		bool done;
		ASSERT_TRUE(s.Next(c, done).ok());
		if (done)
			break;
		++count;
		EXPECT_TRUE(seen.insert(c.node).second) << "returned twice: " << c.node;
		if (count <= 10) {
			EXPECT_GE(c.distance, prev);
			++first_round_in_order;
		}
		prev = c.distance;
	}
	EXPECT_EQ(count, n);
	EXPECT_EQ(seen.size(), n);
	EXPECT_EQ(first_round_in_order, 10u);
}

TEST(Hnsw, NonIterativeStopsAtPool) {
	const std::size_t dim = 8, n = 500;
	auto data = Clustered(n, dim, 10, 5, false);
	auto g = Build(data, dim, Metric::L2, Params{});
	auto r = Search(*g, dim, &data[0], 1000, 10, false);
	EXPECT_EQ(r.size(), 10u);
	for (std::size_t i = 1; i < r.size(); ++i)
		EXPECT_LE(r[i - 1].distance, r[i].distance);
}

TEST(Hnsw, MaxVisitsBoundsWidening) {
	const std::size_t dim = 8, n = 2000;
	auto data = Clustered(n, dim, 10, 5, false);
	auto g = Build(data, dim, Metric::L2, Params{});
	NeverCancel never;
	Searcher s(*g, dim, never);
	SearchParams sp;
	sp.ef_search = 10;
	sp.max_visits = 300;
	ASSERT_TRUE(s.Start(&data[0], sp).ok());
	std::size_t count = 0;
	while (true) {
		Candidate c;
		bool done;
		ASSERT_TRUE(s.Next(c, done).ok());
		if (done)
			break;
		++count;
	}
	EXPECT_GE(count, 10u);
	EXPECT_LT(count, n);
	// One expansion may overshoot the limit by at most one neighbour list.
	EXPECT_LE(s.distance_computations(), 300u + 2 * 16u + 1);
}

// pgvector's meaning of max_scan_tuples: at the limit the search stops exploring but still hands out what it had
// found (the candidates the widening rounds had set aside), nearest first within that tail, each node once.
TEST(Hnsw, MaxVisitsHandsOutWhatWasFound) {
	const std::size_t dim = 8, n = 2000;
	auto data = Clustered(n, dim, 10, 5, false);
	auto g = Build(data, dim, Metric::L2, Params{});
	NeverCancel never;
	Searcher s(*g, dim, never);
	SearchParams sp;
	sp.ef_search = 10;
	sp.max_visits = 300;
	ASSERT_TRUE(s.Start(&data[0], sp).ok());
	std::set<NodeId> seen;
	std::vector<float> order;
	while (true) {
		Candidate c;
		bool done;
		ASSERT_TRUE(s.Next(c, done).ok());
		if (done)
			break;
		EXPECT_TRUE(seen.insert(c.node).second) << "node " << c.node << " returned twice";
		order.push_back(c.distance);
	}
	// Nearly every node whose distance was computed is returned (before: only the rounds' pools, about 70).
	EXPECT_GE(seen.size(), 200u);
	EXPECT_LE(seen.size(), s.distance_computations());
	// The tail handed out after the limit is sorted too.
	EXPECT_TRUE(std::is_sorted(order.end() - 100, order.end()));
}

TEST(Hnsw, MaxMemoryBoundsWidening) {
	const std::size_t dim = 8, n = 4000;
	auto data = Clustered(n, dim, 10, 5, false);
	auto g = Build(data, dim, Metric::L2, Params{});
	NeverCancel never;
	auto drain = [&](std::size_t max_memory, std::size_t &peak) {
		Searcher s(*g, dim, never);
		SearchParams sp;
		sp.ef_search = 10;
		sp.max_memory = max_memory;
		EXPECT_TRUE(s.Start(&data[0], sp).ok());
		std::size_t count = 0;
		while (true) {
			Candidate c;
			bool done;
			EXPECT_TRUE(s.Next(c, done).ok());
			if (done)
				break;
			++count;
		}
		peak = s.memory_bytes();
		return count;
	};
	std::size_t unbounded_peak = 0, bounded_peak = 0;
	const std::size_t all = drain(0, unbounded_peak);
	EXPECT_EQ(all, n); // without a bound the iterative search returns every node
	// The dense visited table of an InMemoryGraph alone takes 2 bytes per node; bound a few times that.
	const std::size_t bound = 4 * n * sizeof(std::uint16_t) + 16 * 1024;
	ASSERT_LT(bound, unbounded_peak);
	const std::size_t some = drain(bound, bounded_peak);
	EXPECT_GE(some, 10u);
	EXPECT_LT(some, n);
	// Buffers grow by doubling: the bound is overshot by at most one growth step.
	EXPECT_LE(bounded_peak, 2 * bound);
}

// Forwards to an InMemoryGraph through the virtual interface only (as the page store is used).
class VirtualStore : public MutableGraphStore {
public:
	explicit VirtualStore(InMemoryGraph &g) : g_(g) {}
	Status EntryPoint(NodeId &node, int &level) override { return g_.EntryPoint(node, level); }
	Status Distances(const float *query, std::span<const NodeId> nodes, std::span<float> out,
	                 std::span<std::uint8_t> pass) override {
		++distance_calls;
		Status st = g_.Distances(query, nodes, out, pass);
		if (st.ok() && odd_fails && !pass.empty())
			for (std::size_t i = 0; i < nodes.size(); ++i)
				if (nodes[i] % 2 == 1)
					pass[i] = 0;
		return st;
	}
	Status Neighbors(NodeId node, int level, std::vector<NodeId> &out) override {
		return g_.Neighbors(node, level, out);
	}
	Status Vector(NodeId node, std::vector<float> &out) override { return g_.Vector(node, out); }
	Status SetNeighbors(NodeId node, int level, std::span<const NodeId> neighbors) override {
		return g_.SetNeighbors(node, level, neighbors);
	}
	Status SetEntryPoint(NodeId node, int level) override { return g_.SetEntryPoint(node, level); }

	bool odd_fails = false;
	std::size_t distance_calls = 0;

private:
	InMemoryGraph &g_;
};

TEST(Hnsw, VirtualPathMatchesFastPath) {
	const std::size_t dim = 16, n = 2000;
	auto data = Clustered(n, dim, 20, 9, false);
	Params p;
	p.m = 8;
	p.ef_construction = 40;
	auto fast = Build(data, dim, Metric::L2, p, 77);

	InMemoryGraph slow_graph(dim, Metric::L2, p);
	VirtualStore slow(slow_graph);
	NeverCancel never;
	std::uint64_t state = 77;
	for (std::size_t i = 0; i < n; ++i) {
		const int level = RandomLevel(p.m, SplitMix(state));
		const NodeId id = slow_graph.Add(&data[i * dim], level);
		ASSERT_EQ(id, i);
		ASSERT_TRUE(Insert(slow, id, level, &data[i * dim], dim, p, never).ok());
	}
	// Same random bits, same algorithm: the same graph.
	for (NodeId i = 0; i < n; ++i)
		for (int l = 0; l <= fast->level(i); ++l) {
			auto a = fast->neighbor_ids(i, l);
			auto b = slow_graph.neighbor_ids(i, l);
			ASSERT_EQ(std::vector<std::uint32_t>(a.begin(), a.end()), std::vector<std::uint32_t>(b.begin(), b.end()))
			    << "node " << i << " level " << l;
		}
	// Searching through the virtual path gives the fast path's results.
	for (std::size_t qi = 0; qi < 20; ++qi) {
		const float *q = &data[(qi * 31) * dim];
		auto a = Search(*fast, dim, q, 10, 40);
		auto b = Search(slow, dim, q, 10, 40);
		ASSERT_EQ(a.size(), b.size());
		for (std::size_t i = 0; i < a.size(); ++i)
			EXPECT_EQ(a[i].node, b[i].node);
	}
	EXPECT_GT(slow.distance_calls, 0u);
}

TEST(Hnsw, FilterReturnsOnlyPassingNodes) {
	const std::size_t dim = 16, n = 3000;
	auto data = Clustered(n, dim, 20, 11, false);
	auto g = Build(data, dim, Metric::L2, Params{});
	VirtualStore filtered(*g);
	filtered.odd_fails = true;
	std::vector<bool> odd(n);
	for (std::size_t i = 0; i < n; ++i)
		odd[i] = i % 2 == 1;
	std::size_t hits = 0, total = 0;
	for (std::size_t qi = 0; qi < 30; ++qi) {
		const float *q = &data[(qi * 53 + 1) * dim];
		auto r = Search(filtered, dim, q, 10, 40);
		ASSERT_EQ(r.size(), 10u);
		for (auto &c : r)
			EXPECT_EQ(c.node % 2, 0u);
		auto truth = ExactTopK(Metric::L2, data, dim, q, 10, &odd);
		std::set<NodeId> got;
		for (auto &c : r)
			got.insert(c.node);
		for (NodeId t : truth)
			hits += got.count(t);
		total += truth.size();
	}
	EXPECT_GE(double(hits) / double(total), 0.9);
}

TEST(Hnsw, RepairAfterDelete) {
	const std::size_t dim = 16, n = 4000;
	auto data = Clustered(n, dim, 30, 13, false);
	Params p;
	p.m = 8;
	p.ef_construction = 64;
	auto g = Build(data, dim, Metric::L2, p);
	std::vector<bool> del(n);
	std::mt19937 rng(3);
	for (std::size_t i = 0; i < n; ++i)
		if (rng() % 10 < 3) {
			del[i] = true;
			g->MarkDeleted(i);
		}
	NodeId ep;
	int ep_level;
	ASSERT_TRUE(g->EntryPoint(ep, ep_level).ok());
	NeverCancel never;
	// Repair every live node that links to a deleted one.
	for (NodeId i = 0; i < n; ++i) {
		if (del[i])
			continue;
		bool touches = false;
		for (int l = 0; l <= g->level(i); ++l)
			for (std::uint32_t x : g->neighbor_ids(i, l))
				touches |= del[x];
		if (touches) {
			ASSERT_TRUE(Repair(*g, i, g->level(i), g->vector_data(i), dim, p, never).ok());
		}
	}
	std::size_t only_deleted = 0;
	for (NodeId i = 0; i < n; ++i) {
		if (del[i])
			continue;
		auto nb = g->neighbor_ids(i, 0);
		bool any_live = false;
		for (std::uint32_t x : nb)
			any_live |= !del[x];
		if (!any_live)
			++only_deleted;
		for (std::uint32_t x : nb)
			EXPECT_NE(x, i);
	}
	EXPECT_EQ(only_deleted, 0u);
	std::vector<float> queries;
	for (std::size_t qi = 0; qi < 50; ++qi)
		queries.insert(queries.end(), &data[(qi * 71) * dim], &data[(qi * 71) * dim] + dim);
	const double r = Recall(*g, Metric::L2, data, queries, dim, 64, &del);
	EXPECT_GE(r, 0.95);
	// No result is ever a deleted node.
	for (std::size_t qi = 0; qi < 50; ++qi) {
		for (auto &c : Search(*g, dim, &queries[qi * dim], 10, 40)) {
			EXPECT_FALSE(del[c.node]);
		}
	}
}

class CancelAfter : public CancelToken {
public:
	explicit CancelAfter(int n) : left_(n) {}
	bool cancelled() const noexcept override { return --left_ < 0; }

private:
	mutable int left_;
};

TEST(Hnsw, CancelledWhenTokenFires) {
	const std::size_t dim = 8, n = 3000;
	auto data = Clustered(n, dim, 10, 17, false);
	auto g = Build(data, dim, Metric::L2, Params{});
	CancelAfter cancel(0);
	Searcher s(*g, dim, cancel);
	SearchParams sp;
	sp.ef_search = 500;
	Status st = s.Start(&data[0], sp);
	EXPECT_EQ(st.code(), StatusCode::Cancelled);

	CancelAfter cancel2(0);
	InMemoryGraph g2(dim, Metric::L2, Params{});
	NodeId id;
	Status last;
	for (std::size_t i = 0; i < n && last.ok(); ++i)
		last = g2.AddAndInsert(&data[i * dim], i * 0x9E3779B97F4A7C15ULL, cancel2, id);
	EXPECT_EQ(last.code(), StatusCode::Cancelled);
}

TEST(Hnsw, RandomLevelDistribution) {
	const int m = 16;
	std::uint64_t state = 1;
	std::vector<int> hist(kMaxLevel + 1);
	const int n = 1000000;
	for (int i = 0; i < n; ++i)
		++hist[RandomLevel(m, SplitMix(state))];
	// P(level >= l) = m^-l.
	EXPECT_NEAR(hist[0] / double(n), 1.0 - 1.0 / m, 0.005);
	EXPECT_NEAR(hist[1] / double(n), (1.0 / m) * (1.0 - 1.0 / m), 0.003);
	EXPECT_EQ(RandomLevel(m, ~std::uint64_t{0}), 0);
	EXPECT_EQ(RandomLevel(m, 0), kMaxLevel > 13 ? 13 : kMaxLevel); // U = 2^-53: floor(53 ln2 / ln16) = 13
	EXPECT_EQ(RandomLevel(2, 0), kMaxLevel);
	EXPECT_EQ(RandomLevel(1, 12345), 0);
	EXPECT_EQ(RandomLevel(m, 0x123456789ULL), RandomLevel(m, 0x123456789ULL));
}

TEST(Hnsw, BadInput) {
	InMemoryGraph g(4, Metric::L2, Params{});
	float v[4] = {1, 2, 3, 4};
	NeverCancel never;
	Params bad;
	bad.m = 1;
	const NodeId id = g.Add(v, 0);
	EXPECT_EQ(Insert(g, id, 0, v, 4, bad, never).code(), StatusCode::InvalidInput);
	EXPECT_EQ(Insert(g, id, 0, v, 3, Params{}, never).code(), StatusCode::InvalidInput);
	EXPECT_EQ(Insert(g, 99, 0, v, 4, Params{}, never).code(), StatusCode::InvalidInput);
	EXPECT_EQ(g.Add(v, kMaxLevel + 1), kNoNode);
	Searcher s(g, 3, never);
	EXPECT_EQ(s.Start(v, SearchParams{}).code(), StatusCode::InvalidInput);
}

} // namespace
} // namespace s5v::hnsw

namespace s5v::hnsw {
namespace {

// CSR of every level of an in-memory graph, as the glue builds it.
void GraphToCsr(InMemoryGraph &g, std::vector<std::uint32_t> &offsets, std::vector<std::uint32_t> &targets) {
	offsets.assign(g.size() + 1, 0);
	targets.clear();
	for (std::size_t i = 0; i < g.size(); ++i) {
		offsets[i] = std::uint32_t(targets.size());
		for (int l = 0; l <= g.level(i); ++l)
			for (std::uint32_t t : g.neighbor_ids(i, l))
				targets.push_back(t);
	}
	offsets[g.size()] = std::uint32_t(targets.size());
}

TEST(HnswConnectivity, FindUnreachableOnAHandMadeGraph) {
	// 0 -> 1 -> 2, 3 -> 0 (3 has no in-link), 4 isolated.
	std::vector<std::uint32_t> offsets{0, 1, 2, 2, 3, 3};
	std::vector<std::uint32_t> targets{1, 2, 0};
	std::vector<std::uint8_t> live{1, 1, 1, 1, 1};
	std::vector<std::uint32_t> lost;
	ASSERT_TRUE(FindUnreachable(offsets, targets, 0, live, lost).ok());
	EXPECT_EQ(lost, (std::vector<std::uint32_t>{3, 4}));
	live[4] = 0; // deleted nodes are not reported
	ASSERT_TRUE(FindUnreachable(offsets, targets, 0, live, lost).ok());
	EXPECT_EQ(lost, (std::vector<std::uint32_t>{3}));
	// An entry point outside the graph reaches nothing.
	ASSERT_TRUE(FindUnreachable(offsets, targets, 99, live, lost).ok());
	EXPECT_EQ(lost.size(), 4u);
	// Arrays that disagree are rejected, not read past their end.
	std::vector<std::uint8_t> short_live{1};
	EXPECT_EQ(FindUnreachable(offsets, targets, 0, short_live, lost).code(), StatusCode::InvalidInput);
}

TEST(HnswConnectivity, RepairThenForceLinksReachesEveryDuplicate) {
	const std::size_t dim = 8, n = 300;
	std::vector<float> data(n * dim, 0.5f);
	for (std::size_t i = 200; i < n; ++i)
		data[i * dim] = float(i);
	Params p;
	p.m = 4;
	p.ef_construction = 16;
	auto g = Build(data, dim, Metric::L2, p);
	NeverCancel never;
	std::vector<std::uint32_t> offsets, targets, lost;
	std::vector<std::uint8_t> live(n, 1);
	NodeId ep;
	int lvl;
	ASSERT_TRUE(g->EntryPoint(ep, lvl).ok());
	GraphToCsr(*g, offsets, targets);
	ASSERT_TRUE(FindUnreachable(offsets, targets, std::uint32_t(ep), live, lost).ok());
	const std::size_t before = lost.size();
	for (int round = 0; round < 3 && !lost.empty(); ++round) {
		for (std::uint32_t id : lost)
			ASSERT_TRUE(Repair(*g, id, g->level(id), g->vector_data(id), dim, p, never).ok());
		GraphToCsr(*g, offsets, targets);
		ASSERT_TRUE(FindUnreachable(offsets, targets, std::uint32_t(ep), live, lost).ok());
	}
	if (!lost.empty()) {
		std::vector<NodeId> ids(n);
		for (std::size_t i = 0; i < n; ++i)
			ids[i] = i;
		ASSERT_TRUE(ForceLinks(*g, p, offsets, targets, ids, std::uint32_t(ep), lost).ok());
		GraphToCsr(*g, offsets, targets);
		ASSERT_TRUE(FindUnreachable(offsets, targets, std::uint32_t(ep), live, lost).ok());
	}
	EXPECT_TRUE(lost.empty()) << lost.size() << " of " << n << " still unreachable (" << before << " before)";
	// Lists stay within bounds.
	for (std::size_t i = 0; i < n; ++i)
		EXPECT_LE(g->neighbor_ids(i, 0).size(), std::size_t(MaxNeighbors(p, 0)));
}

// Inserts keep every node reachable from the entry point (no VACUUM needed): pruning a full list never drops a
// node's only in-link. Tight clusters and small m make pruning frequent.
TEST(HnswConnectivity, EveryNodeReachableAfterInserts) {
	struct Case {
		std::size_t n, dim, clusters;
		int m, ef;
		std::uint32_t seed;
	};
	const Case cases[] = {{4000, 16, 30, 4, 16, 1}, {4000, 8, 10, 6, 24, 2}, {3000, 32, 50, 16, 64, 3}};
	for (const Case &c : cases) {
		auto data = Clustered(c.n, c.dim, c.clusters, c.seed, false);
		Params p;
		p.m = c.m;
		p.ef_construction = c.ef;
		auto g = Build(data, c.dim, Metric::L2, p, c.seed);
		std::vector<std::uint32_t> offsets, targets, lost;
		std::vector<std::uint8_t> live(c.n, 1);
		NodeId ep;
		int lvl;
		ASSERT_TRUE(g->EntryPoint(ep, lvl).ok());
		GraphToCsr(*g, offsets, targets);
		ASSERT_TRUE(FindUnreachable(offsets, targets, std::uint32_t(ep), live, lost).ok());
		EXPECT_TRUE(lost.empty()) << lost.size() << " of " << c.n << " unreachable (m " << c.m << ", dim " << c.dim
		                          << ")";
	}
}

// The same through the virtual store (the path the page store takes).
TEST(HnswConnectivity, EveryNodeReachableAfterInsertsVirtualPath) {
	const std::size_t dim = 16, n = 4000;
	auto data = Clustered(n, dim, 30, 5, false);
	Params p;
	p.m = 4;
	p.ef_construction = 16;
	InMemoryGraph graph(dim, Metric::L2, p);
	VirtualStore store(graph);
	NeverCancel never;
	std::uint64_t state = 5;
	for (std::size_t i = 0; i < n; ++i) {
		const int level = RandomLevel(p.m, SplitMix(state));
		const NodeId id = graph.Add(&data[i * dim], level);
		ASSERT_TRUE(Insert(store, id, level, &data[i * dim], dim, p, never).ok());
	}
	std::vector<std::uint32_t> offsets, targets, lost;
	std::vector<std::uint8_t> live(n, 1);
	NodeId ep;
	int lvl;
	ASSERT_TRUE(graph.EntryPoint(ep, lvl).ok());
	GraphToCsr(graph, offsets, targets);
	ASSERT_TRUE(FindUnreachable(offsets, targets, std::uint32_t(ep), live, lost).ok());
	EXPECT_TRUE(lost.empty()) << lost.size() << " of " << n << " unreachable";
}

// A store where another writer changes a list between the inserter's read and its write: before each
// CompareAndSetNeighbors on a list it has not touched yet, an "intruder" link is appended (when there is room).
class ConflictStore : public VirtualStore {
public:
	ConflictStore(InMemoryGraph &g, bool atomic) : VirtualStore(g), g_(g), atomic_(atomic) {}
	Status CompareAndSetNeighbors(NodeId node, int level, std::span<const NodeId> expected,
	                              std::span<const NodeId> desired, bool &applied) override {
		if (touched.insert({node, level}).second && node != intruder) {
			std::vector<NodeId> cur;
			S5V_RETURN_IF_ERROR(g_.Neighbors(node, level, cur));
			if (cur.size() < std::size_t(MaxNeighbors(g_.params(), level)) &&
			    std::find(cur.begin(), cur.end(), intruder) == cur.end()) {
				cur.push_back(intruder);
				S5V_RETURN_IF_ERROR(g_.SetNeighbors(node, level, cur));
				injected.push_back({node, level});
			}
		}
		if (!atomic_) { // a plain read-then-write store: the other writer's link is overwritten
			applied = true;
			return g_.SetNeighbors(node, level, desired);
		}
		return MutableGraphStore::CompareAndSetNeighbors(node, level, expected, desired, applied);
	}

	NodeId intruder = 0;
	std::set<std::pair<NodeId, int>> touched;
	std::vector<std::pair<NodeId, int>> injected;

private:
	InMemoryGraph &g_;
	bool atomic_;
};

// Back-link updates are atomic read-modify-writes: a link another writer added between the read and the write
// survives (unless the merged list overflowed and was pruned), and the new node is linked.
TEST(HnswConcurrency, BackLinksDoNotLoseConcurrentLinks) {
	const std::size_t dim = 8, n = 600;
	auto data = Clustered(n + 40, dim, 5, 21, false);
	Params p;
	p.m = 8;
	// Below the level-0 list size (16): inserts keep pruned candidates to fill their lists, so with a larger
	// ef_construction every list would be full and the other writer (which only appends) could not add a link.
	p.ef_construction = 8;
	for (bool atomic : {true, false}) {
		std::vector<float> base(data.begin(), data.begin() + n * dim);
		auto g = Build(base, dim, Metric::L2, p, 21);
		std::size_t lost = 0, injected = 0, unlinked = 0;
		NeverCancel never;
		for (std::size_t i = n; i < n + 40; ++i) {
			ConflictStore store(*g, atomic);
			store.intruder = NodeId(i % 97);
			const NodeId id = g->Add(&data[i * dim], 0);
			ASSERT_TRUE(Insert(store, id, 0, &data[i * dim], dim, p, never).ok());
			for (auto [node, level] : store.injected) {
				auto list = g->neighbor_ids(node, level);
				const bool full = list.size() >= std::size_t(MaxNeighbors(p, level));
				if (!full && std::find(list.begin(), list.end(), std::uint32_t(store.intruder)) == list.end())
					++lost;
				++injected;
			}
			bool linked = false;
			for (NodeId x = 0; x < g->size() && !linked; ++x)
				for (std::uint32_t t : g->neighbor_ids(x, 0))
					linked |= t == id;
			unlinked += !linked;
		}
		ASSERT_GT(injected, 40u);
		if (atomic) {
			EXPECT_EQ(lost, 0u) << "of " << injected;
			EXPECT_EQ(unlinked, 0u);
		} else {
			EXPECT_GT(lost, 0u) << "the non-atomic store should lose links (the test would not see a lost update)";
		}
	}
}

// VACUUM's local repair: deleted entries are replaced from the deleted nodes' own lists, live entries stay, no
// list keeps a deleted node (after a search Repair of the lists left sparse), and recall over the survivors holds.
TEST(Hnsw, RepairLocalAfterDelete) {
	const std::size_t dim = 16, n = 4000;
	auto data = Clustered(n, dim, 30, 13, false);
	Params p;
	p.m = 8;
	p.ef_construction = 64;
	auto g = Build(data, dim, Metric::L2, p);
	std::vector<bool> del(n);
	std::mt19937 rng(3);
	for (std::size_t i = 0; i < n; ++i)
		if (rng() % 10 < 3) {
			del[i] = true;
			g->MarkDeleted(i);
		}
	NeverCancel never;
	std::size_t repaired = 0, sparse_lists = 0, live_dropped = 0;
	for (NodeId i = 0; i < n; ++i) {
		if (del[i])
			continue;
		bool touches = false;
		std::vector<std::vector<std::uint32_t>> before;
		for (int l = 0; l <= g->level(i); ++l) {
			auto v = g->neighbor_ids(i, l);
			before.emplace_back(v.begin(), v.end());
			for (std::uint32_t x : v)
				touches |= del[x];
		}
		if (!touches)
			continue;
		++repaired;
		bool sparse = false;
		ASSERT_TRUE(RepairLocal(*g, i, g->level(i), g->vector_data(i), dim, p, sparse).ok());
		for (int l = 0; l <= g->level(i); ++l) {
			auto after = g->neighbor_ids(i, l);
			for (std::uint32_t x : before[l])
				if (!del[x] && std::find(after.begin(), after.end(), x) == after.end())
					++live_dropped;
		}
		if (sparse) {
			++sparse_lists;
			ASSERT_TRUE(Repair(*g, i, g->level(i), g->vector_data(i), dim, p, never).ok());
		}
	}
	EXPECT_GT(repaired, n / 2);
	EXPECT_EQ(live_dropped, 0u) << "a local repair must keep every live entry";
	for (NodeId i = 0; i < n; ++i) {
		if (del[i])
			continue;
		for (int l = 0; l <= g->level(i); ++l) {
			for (std::uint32_t x : g->neighbor_ids(i, l)) {
				EXPECT_FALSE(del[x]) << "node " << i << " still links to deleted " << x;
			}
		}
	}
	std::vector<float> queries;
	for (std::size_t qi = 0; qi < 50; ++qi)
		queries.insert(queries.end(), &data[(qi * 71) * dim], &data[(qi * 71) * dim] + dim);
	const double r = Recall(*g, Metric::L2, data, queries, dim, 64, &del);
	EXPECT_GE(r, 0.95) << repaired << " repaired, " << sparse_lists << " needed a search";
}

} // namespace
} // namespace s5v::hnsw
