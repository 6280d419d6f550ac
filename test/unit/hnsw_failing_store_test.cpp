// HNSW over a graph store that fails at its N-th call (as a page read that raises an error does in the
// PostgreSQL store): for every N, Search, Insert and Repair return that error unchanged, stop calling the
// store, and leave a graph that is still well formed and searchable. Run under ASan/UBSan: nothing leaks or
// crashes on any of the error paths.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "hnsw.h"

namespace s5v::hnsw {
namespace {

// A MutableGraphStore over an InMemoryGraph that returns an error at call `fail_at` (1-based; 0 = never).
// Not an InMemoryGraph itself, so the algorithm takes its virtual path, the one the page store uses.
class FailingStore final : public MutableGraphStore {
public:
	FailingStore(InMemoryGraph &g, int fail_at) : g_(g), fail_at_(fail_at) {}

	int calls() const { return calls_; }
	bool failed() const { return failed_; }
	int calls_after_failure() const { return after_; }

	Status EntryPoint(NodeId &node, int &level) override {
		S5V_RETURN_IF_ERROR(Tick());
		return g_.EntryPoint(node, level);
	}
	Status Distances(const float *query, std::span<const NodeId> nodes, std::span<float> out,
	                 std::span<std::uint8_t> pass) override {
		S5V_RETURN_IF_ERROR(Tick());
		return g_.Distances(query, nodes, out, pass);
	}
	Status Neighbors(NodeId node, int level, std::vector<NodeId> &out) override {
		S5V_RETURN_IF_ERROR(Tick());
		return g_.Neighbors(node, level, out);
	}
	Status Vector(NodeId node, std::vector<float> &out) override {
		S5V_RETURN_IF_ERROR(Tick());
		return g_.Vector(node, out);
	}
	Status SetNeighbors(NodeId node, int level, std::span<const NodeId> neighbors) override {
		S5V_RETURN_IF_ERROR(Tick());
		return g_.SetNeighbors(node, level, neighbors);
	}
	Status SetEntryPoint(NodeId node, int level) override {
		S5V_RETURN_IF_ERROR(Tick());
		return g_.SetEntryPoint(node, level);
	}

	static Status Injected() { return Status(StatusCode::External, "injected failure"); }

private:
	Status Tick() {
		if (failed_)
			after_++;
		if (++calls_ == fail_at_) {
			failed_ = true;
			return Injected();
		}
		return Status::Ok();
	}

	InMemoryGraph &g_;
	int fail_at_;
	int calls_ = 0;
	int after_ = 0;
	bool failed_ = false;
};

std::vector<float> RandomVectors(std::size_t n, std::size_t dim, std::uint32_t seed) {
	std::mt19937 rng(seed);
	std::normal_distribution<float> g;
	std::vector<float> v(n * dim);
	for (float &x : v)
		x = g(rng);
	return v;
}

std::uint64_t NextBits(std::uint64_t &s) {
	s = s * 6364136223846793005ULL + 1442695040888963407ULL;
	return s ^ (s >> 29);
}

void ExpectWellFormed(InMemoryGraph &g) {
	const Params &p = g.params();
	for (NodeId i = 0; i < g.size(); ++i)
		for (int l = 0; l <= g.level(i); ++l) {
			auto ids = g.neighbor_ids(i, l);
			EXPECT_LE(ids.size(), static_cast<std::size_t>(MaxNeighbors(p, l)));
			for (std::uint32_t x : ids) {
				EXPECT_LT(x, g.size());
				EXPECT_NE(x, i);
			}
		}
	NodeId ep;
	int level;
	ASSERT_TRUE(g.EntryPoint(ep, level).ok());
	if (ep != kNoNode) {
		EXPECT_LT(ep, g.size());
		EXPECT_EQ(level, g.level(ep));
	}
}

// Run an iterative search to `want` results over `store`; the first non-OK status, or OK.
Status RunSearch(GraphStore &store, std::size_t dim, const float *q, std::size_t want, std::size_t &got) {
	NeverCancel never;
	Searcher s(store, dim, never);
	SearchParams sp;
	sp.ef_search = 10;
	got = 0;
	S5V_RETURN_IF_ERROR(s.Start(q, sp));
	while (got < want) {
		Candidate c;
		bool done;
		S5V_RETURN_IF_ERROR(s.Next(c, done));
		if (done)
			break;
		got++;
	}
	return Status::Ok();
}

TEST(HnswFailingStore, SearchFailsAtEveryCall) {
	const std::size_t dim = 8, n = 300;
	auto data = RandomVectors(n, dim, 5);
	InMemoryGraph g(dim, Metric::L2, Params{6, 24});
	NeverCancel never;
	std::uint64_t bits = 9;
	for (std::size_t i = 0; i < n; ++i) {
		NodeId id;
		ASSERT_TRUE(g.AddAndInsert(&data[i * dim], NextBits(bits), never, id).ok());
	}
	std::vector<float> q(dim, 0.1f);
	FailingStore counting(g, 0);
	std::size_t full = 0;
	ASSERT_TRUE(RunSearch(counting, dim, q.data(), 60, full).ok());
	ASSERT_EQ(full, 60u); // widened past ef_search
	const int total = counting.calls();
	ASSERT_GT(total, 20);
	for (int fail_at = 1; fail_at <= total; ++fail_at) {
		FailingStore store(g, fail_at);
		std::size_t got = 0;
		Status st = RunSearch(store, dim, q.data(), 60, got);
		ASSERT_TRUE(store.failed()) << fail_at;
		EXPECT_EQ(st.code(), StatusCode::External) << "fail_at " << fail_at;
		EXPECT_EQ(st.message(), "injected failure");
		EXPECT_EQ(store.calls_after_failure(), 0) << "the search went on after the error, fail_at " << fail_at;
		EXPECT_LT(got, 60u);
	}
	// the graph is untouched by failed searches
	std::size_t got = 0;
	FailingStore again(g, 0);
	ASSERT_TRUE(RunSearch(again, dim, q.data(), 60, got).ok());
	EXPECT_EQ(again.calls(), total);
}

TEST(HnswFailingStore, InsertAndRepairFailAtEveryCall) {
	const std::size_t dim = 8, n = 200, extra = 120;
	auto data = RandomVectors(n + extra, dim, 6);
	InMemoryGraph g(dim, Metric::L2, Params{4, 16});
	NeverCancel never;
	std::uint64_t bits = 21;
	for (std::size_t i = 0; i < n; ++i) {
		NodeId id;
		ASSERT_TRUE(g.AddAndInsert(&data[i * dim], NextBits(bits), never, id).ok());
	}
	// Each failing insert adds a node and links it through a store failing at call 1, 2, 3, ...
	int failures = 0, completed = 0;
	for (std::size_t k = 0; k < extra; ++k) {
		const float *vec = &data[(n + k) * dim];
		const int level = static_cast<int>(k % 3);
		NodeId id = g.Add(vec, level);
		ASSERT_NE(id, kNoNode);
		FailingStore store(g, static_cast<int>(k) + 1);
		Status st = Insert(store, id, level, vec, dim, g.params(), never);
		if (store.failed()) {
			failures++;
			EXPECT_EQ(st.code(), StatusCode::External) << "fail_at " << k + 1;
			EXPECT_EQ(store.calls_after_failure(), 0) << "insert went on after the error, fail_at " << k + 1;
		} else {
			completed++;
			EXPECT_TRUE(st.ok()) << st.message();
		}
		ExpectWellFormed(g);
	}
	EXPECT_GT(failures, 50);
	EXPECT_GT(completed, 0); // some inserts make fewer calls than their fail_at: those complete

	// Repair, failing at each call in turn, on nodes whose neighbours were deleted.
	for (NodeId d = 0; d < 40; ++d)
		g.MarkDeleted(d);
	int repair_failures = 0;
	for (NodeId node = 50; node < 150; ++node) {
		std::vector<float> vec(g.vector_data(node), g.vector_data(node) + dim);
		FailingStore store(g, static_cast<int>(node - 49));
		Status st = Repair(store, node, g.level(node), vec.data(), dim, g.params(), never);
		if (store.failed()) {
			repair_failures++;
			EXPECT_EQ(st.code(), StatusCode::External);
			EXPECT_EQ(store.calls_after_failure(), 0);
		} else {
			EXPECT_TRUE(st.ok()) << st.message();
		}
	}
	EXPECT_GT(repair_failures, 20);
	ExpectWellFormed(g);

	// Still searchable after all those partial writes.
	std::size_t got = 0;
	ASSERT_TRUE(RunSearch(g, dim, &data[0], 30, got).ok());
	EXPECT_EQ(got, 30u);
}

TEST(HnswFailingStore, FirstInsertIntoAnEmptyGraph) {
	const std::size_t dim = 4;
	float v[dim] = {1, 2, 3, 4};
	NeverCancel never;
	for (int fail_at = 1; fail_at <= 3; ++fail_at) {
		InMemoryGraph g(dim, Metric::L2, Params{});
		NodeId id = g.Add(v, 2);
		FailingStore store(g, fail_at);
		Status st = Insert(store, id, 2, v, dim, g.params(), never);
		if (store.failed()) {
			EXPECT_EQ(st.code(), StatusCode::External);
			EXPECT_EQ(store.calls_after_failure(), 0);
		} else {
			EXPECT_TRUE(st.ok());
		}
		ExpectWellFormed(g);
	}
}

} // namespace
} // namespace s5v::hnsw
