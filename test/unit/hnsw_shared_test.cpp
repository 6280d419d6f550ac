// SharedGraph: the relocatable HNSW arena of the parallel build, with N std::threads inserting into one block at once
// (each through its own view, as each process of a parallel build attaches its own).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "hnsw.h"
#include "hnsw_shared.h"

namespace s5v::hnsw {
namespace {

std::uint64_t Mix(std::uint64_t x) {
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

std::vector<float> Clustered(std::size_t n, std::size_t dim, std::size_t clusters, std::uint32_t seed) {
	std::mt19937 rng(seed);
	std::normal_distribution<float> centre(0.0f, 1.0f), noise(0.0f, 0.35f);
	std::vector<float> centres(clusters * dim);
	for (float &c : centres)
		c = centre(rng);
	std::vector<float> data(n * dim);
	for (std::size_t i = 0; i < n; ++i) {
		const std::size_t c = rng() % clusters;
		for (std::size_t j = 0; j < dim; ++j)
			data[i * dim + j] = centres[c * dim + j] + noise(rng);
	}
	return data;
}

float L2(const float *a, const float *b, std::size_t dim) {
	double s = 0;
	for (std::size_t j = 0; j < dim; ++j)
		s += double(a[j] - b[j]) * double(a[j] - b[j]);
	return float(s);
}

// A 64-byte aligned block, freed on scope exit.
struct Block {
	explicit Block(std::size_t n) : bytes(n), p(static_cast<char *>(std::aligned_alloc(64, (n + 63) & ~size_t{63}))) {}
	~Block() { std::free(p); }
	std::size_t bytes;
	char *p;
};

struct Payload {
	std::uint64_t row;
	std::uint64_t check;
};

// Add every row of `data` (rows i with i % threads == t go to thread t), each thread through its own view.
void BuildConcurrently(Block &b, const std::vector<float> &data, std::size_t dim, int threads,
                       std::vector<NodeId> &id_of_row) {
	const std::size_t n = data.size() / dim;
	id_of_row.assign(n, kNoNode);
	std::atomic<int> failures{0};
	std::vector<std::thread> pool;
	for (int t = 0; t < threads; ++t) {
		pool.emplace_back([&, t]() {
			SharedGraph g(b.p, b.bytes);
			if (!g.status().ok()) {
				failures++;
				return;
			}
			NeverCancel never;
			for (std::size_t i = static_cast<std::size_t>(t); i < n; i += static_cast<std::size_t>(threads)) {
				const int level = std::min(RandomLevel(16, Mix(i)), kMaxLevel);
				Payload pl{i, i * 7 + 1};
				NodeId id;
				if (!g.Add(&data[i * dim], level, &pl, id).ok() || !g.InsertConcurrent(id, never).ok()) {
					failures++;
					return;
				}
				id_of_row[i] = id;
			}
		});
	}
	for (auto &th : pool)
		th.join();
	ASSERT_EQ(failures.load(), 0);
}

// Structural checks: every list within capacity, no self link, no duplicate, every target a node.
void CheckLists(SharedGraph &g) {
	for (NodeId i = 0; i < g.size(); ++i) {
		for (int l = 0; l <= g.level(i); ++l) {
			auto ids = g.neighbor_ids(i, l);
			ASSERT_LE(ids.size(), static_cast<std::size_t>(MaxNeighbors(g.params(), l)));
			std::set<std::uint32_t> seen;
			for (std::uint32_t x : ids) {
				ASSERT_LT(x, g.size());
				ASSERT_NE(x, i);
				ASSERT_TRUE(seen.insert(x).second) << "duplicate link";
				ASSERT_GE(g.level(x), l) << "link to a node without that level";
			}
		}
	}
}

std::size_t CountUnreachable(SharedGraph &g) {
	NodeId ep;
	int lvl;
	EXPECT_TRUE(g.EntryPoint(ep, lvl).ok());
	std::vector<std::uint32_t> offsets(g.size() + 1), targets;
	for (std::size_t i = 0; i < g.size(); ++i) {
		offsets[i] = static_cast<std::uint32_t>(targets.size());
		for (int l = 0; l <= g.level(i); ++l)
			for (std::uint32_t x : g.neighbor_ids(i, l))
				targets.push_back(x);
	}
	offsets[g.size()] = static_cast<std::uint32_t>(targets.size());
	std::vector<std::uint8_t> live(g.size(), 1);
	std::vector<std::uint32_t> lost;
	EXPECT_TRUE(FindUnreachable(offsets, targets, static_cast<std::uint32_t>(ep), live, lost).ok());
	return lost.size();
}

double RecallAt10(GraphStore &store, const std::vector<float> &data, const std::vector<float> &queries, std::size_t dim,
                  const std::vector<NodeId> &id_of_row) {
	const std::size_t n = data.size() / dim, nq = queries.size() / dim;
	std::vector<std::size_t> row_of_id(n);
	for (std::size_t r = 0; r < n; ++r)
		row_of_id[id_of_row[r]] = r;
	NeverCancel never;
	std::size_t hits = 0;
	for (std::size_t qi = 0; qi < nq; ++qi) {
		const float *q = &queries[qi * dim];
		std::vector<std::pair<float, std::size_t>> all;
		for (std::size_t r = 0; r < n; ++r)
			all.push_back({L2(q, &data[r * dim], dim), r});
		std::partial_sort(all.begin(), all.begin() + 10, all.end());
		std::set<std::size_t> truth;
		for (int k = 0; k < 10; ++k)
			truth.insert(all[k].second);
		Searcher s(store, dim, never);
		SearchParams sp;
		sp.ef_search = 64;
		sp.iterative = false;
		EXPECT_TRUE(s.Start(q, sp).ok());
		for (int k = 0; k < 10; ++k) {
			Candidate c;
			bool done;
			EXPECT_TRUE(s.Next(c, done).ok());
			if (done)
				break;
			hits += truth.count(row_of_id[c.node]);
		}
	}
	return double(hits) / double(nq * 10);
}

double SerialRecall(const std::vector<float> &data, const std::vector<float> &queries, std::size_t dim) {
	const std::size_t n = data.size() / dim;
	InMemoryGraph g(dim, Metric::L2, Params{16, 64});
	NeverCancel never;
	std::vector<NodeId> ids(n);
	for (std::size_t i = 0; i < n; ++i) {
		const int level = std::min(RandomLevel(16, Mix(i)), kMaxLevel);
		ids[i] = g.Add(&data[i * dim], level);
		EXPECT_TRUE(Insert(g, ids[i], level, &data[i * dim], dim, Params{16, 64}, never).ok());
	}
	return RecallAt10(g, data, queries, dim, ids);
}

TEST(SharedGraph, LayoutAndAttachChecks) {
	const Params p{16, 64};
	EXPECT_EQ(SharedGraph::BytesFor(0, 8, p, 16), 0u);
	EXPECT_EQ(SharedGraph::BytesFor(10, 0, p, 16), 0u);
	EXPECT_EQ(SharedGraph::BytesFor(10, 8, Params{1, 64}, 16), 0u);
	const std::size_t bytes = SharedGraph::BytesFor(100, 8, p, 16);
	ASSERT_GT(bytes, 100u * (16 * 4 + 33 * 4 + 16));
	// More nodes take more bytes; the upper reserve grows with the capacity.
	EXPECT_GT(SharedGraph::BytesFor(1000, 8, p, 16), bytes);
	Block b(bytes);
	EXPECT_FALSE(SharedGraph::Init(b.p, bytes - 1, 100, 8, Metric::L2, p, 16).ok());
	EXPECT_FALSE(SharedGraph::Init(b.p + 8, bytes - 64, 100, 8, Metric::L2, p, 16).ok()); // misaligned
	std::memset(b.p, 0x5a, bytes);
	{
		SharedGraph g(b.p, bytes);
		EXPECT_FALSE(g.status().ok());
		NodeId id;
		const float v[8] = {};
		EXPECT_FALSE(g.Add(v, 0, nullptr, id).ok());
	}
	ASSERT_TRUE(SharedGraph::Init(b.p, bytes, 100, 8, Metric::L2, p, 16).ok());
	SharedGraph g(b.p, bytes);
	ASSERT_TRUE(g.status().ok()) << g.status().message();
	EXPECT_EQ(g.size(), 0u);
	EXPECT_EQ(g.capacity(), 100u);
	NodeId ep;
	int lvl;
	ASSERT_TRUE(g.EntryPoint(ep, lvl).ok());
	EXPECT_EQ(ep, kNoNode);
	// A view of a block shorter than its header says is refused.
	SharedGraph shorter(b.p, bytes / 2);
	EXPECT_FALSE(shorter.status().ok());
	// Bad input to Add.
	NodeId id;
	const float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	EXPECT_FALSE(g.Add(nullptr, 0, nullptr, id).ok());
	EXPECT_FALSE(g.Add(v, kMaxLevel + 1, nullptr, id).ok());
	EXPECT_FALSE(g.InsertConcurrent(5, NeverCancel{}).ok()); // not added
}

TEST(SharedGraph, FullBlockRefusesMoreNodesAndKeepsWhatItHas) {
	const std::size_t dim = 8, cap = 50;
	const Params p{4, 16};
	Block b(SharedGraph::BytesFor(cap, dim, p, 16));
	ASSERT_TRUE(SharedGraph::Init(b.p, b.bytes, cap, dim, Metric::L2, p, 16).ok());
	SharedGraph g(b.p, b.bytes);
	auto data = Clustered(80, dim, 4, 3);
	NeverCancel never;
	std::size_t added = 0;
	for (std::size_t i = 0; i < 80; ++i) {
		NodeId id;
		Payload pl{i, i};
		Status st = g.Add(&data[i * dim], 0, &pl, id);
		if (!st.ok()) {
			EXPECT_EQ(st.code(), StatusCode::LimitExceeded);
			continue;
		}
		ASSERT_TRUE(g.InsertConcurrent(id, never).ok());
		added++;
	}
	EXPECT_EQ(added, cap);
	EXPECT_TRUE(g.full());
	EXPECT_EQ(g.size(), cap);
	CheckLists(g);
	for (NodeId i = 0; i < cap; ++i)
		EXPECT_EQ(static_cast<const Payload *>(g.payload(i))->row, i);
}

TEST(SharedGraph, ConcurrentInsertsFromFourThreadsGiveAConnectedGraphWithSerialRecall) {
	const std::size_t dim = 24, n = 3000;
	auto data = Clustered(n, dim, 30, 11);
	auto queries = Clustered(50, dim, 30, 12);
	const Params p{16, 64};
	Block b(SharedGraph::BytesFor(n, dim, p, sizeof(Payload)));
	ASSERT_TRUE(SharedGraph::Init(b.p, b.bytes, n, dim, Metric::L2, p, sizeof(Payload)).ok());
	std::vector<NodeId> id_of_row;
	BuildConcurrently(b, data, dim, 4, id_of_row);
	SharedGraph g(b.p, b.bytes);
	ASSERT_TRUE(g.status().ok());
	ASSERT_EQ(g.size(), n);
	EXPECT_FALSE(g.full());
	CheckLists(g);
	// Every node is the row its payload names, with the vector it was given.
	for (std::size_t r = 0; r < n; ++r) {
		const NodeId id = id_of_row[r];
		ASSERT_NE(id, kNoNode);
		const auto *pl = static_cast<const Payload *>(g.payload(id));
		ASSERT_EQ(pl->row, r);
		ASSERT_EQ(pl->check, r * 7 + 1);
		ASSERT_EQ(std::memcmp(g.vector_data(id), &data[r * dim], sizeof(float) * dim), 0);
		ASSERT_EQ(g.level(id), std::min(RandomLevel(16, Mix(r)), kMaxLevel));
	}
	// The entry point is a node of the highest level.
	NodeId ep;
	int ep_level;
	ASSERT_TRUE(g.EntryPoint(ep, ep_level).ok());
	int top = 0;
	for (NodeId i = 0; i < n; ++i)
		top = std::max(top, g.level(i));
	EXPECT_EQ(ep_level, top);
	EXPECT_EQ(g.level(ep), top);
	// Concurrent pruning may leave a few nodes without in-links (as the serial build can); Repair reconnects them.
	const std::size_t lost = CountUnreachable(g);
	EXPECT_LE(lost, n / 100);
	const double shared = RecallAt10(g, data, queries, dim, id_of_row);
	const double serial = SerialRecall(data, queries, dim);
	std::printf("recall@10 shared (4 threads) %.4f, serial %.4f, unreachable before repair %zu\n", shared, serial,
	            lost);
	EXPECT_GE(shared, serial - 0.02) << "serial " << serial;
	EXPECT_GE(shared, 0.9);
}

TEST(SharedGraph, BlockIsRelocatable) {
	const std::size_t dim = 16, n = 1500;
	auto data = Clustered(n, dim, 20, 5);
	auto queries = Clustered(30, dim, 20, 6);
	const Params p{8, 40};
	Block b(SharedGraph::BytesFor(n, dim, p, 0));
	ASSERT_TRUE(SharedGraph::Init(b.p, b.bytes, n, dim, Metric::L2, p, 0).ok());
	std::vector<NodeId> id_of_row;
	BuildConcurrently(b, data, dim, 2, id_of_row);
	// Another mapping of the same bytes at another address sees the same graph.
	Block copy(b.bytes);
	std::memcpy(copy.p, b.p, b.bytes);
	std::memset(b.p, 0, b.bytes);
	SharedGraph g(copy.p, copy.bytes);
	ASSERT_TRUE(g.status().ok());
	ASSERT_EQ(g.size(), n);
	CheckLists(g);
	EXPECT_GE(RecallAt10(g, data, queries, dim, id_of_row), 0.9);
}

// A token that fires after a number of polls.
class CountdownCancel final : public CancelToken {
public:
	explicit CountdownCancel(int n) : left_(n) {}
	bool cancelled() const noexcept override { return --left_ < 0; }

private:
	mutable std::atomic<int> left_;
};

TEST(SharedGraph, CancelledInsertReleasesItsLocks) {
	const std::size_t dim = 16, n = 600;
	auto data = Clustered(n, dim, 10, 9);
	const Params p{8, 150};
	Block b(SharedGraph::BytesFor(n, dim, p, 0));
	ASSERT_TRUE(SharedGraph::Init(b.p, b.bytes, n, dim, Metric::L2, p, 0).ok());
	SharedGraph g(b.p, b.bytes);
	NeverCancel never;
	std::size_t i = 0;
	for (; i < n - 1; ++i) {
		NodeId id;
		ASSERT_TRUE(g.Add(&data[i * dim], 0, nullptr, id).ok());
		ASSERT_TRUE(g.InsertConcurrent(id, never).ok());
	}
	NodeId id;
	ASSERT_TRUE(g.Add(&data[i * dim], 0, nullptr, id).ok());
	CountdownCancel now(0);
	Status st = g.InsertConcurrent(id, now);
	EXPECT_EQ(st.code(), StatusCode::Cancelled);
	// The entry lock was released: an exclusive taker (SetEntryPoint) and another thread's insert get through.
	NodeId ep;
	int lvl;
	ASSERT_TRUE(g.EntryPoint(ep, lvl).ok());
	std::thread other([&]() {
		SharedGraph v(b.p, b.bytes);
		EXPECT_TRUE(v.SetEntryPoint(ep, lvl).ok());
		EXPECT_TRUE(v.InsertConcurrent(id, NeverCancel{}).ok());
	});
	other.join();
	CheckLists(g);
	EXPECT_LE(CountUnreachable(g), 2u);
}

TEST(SharedGraph, RepairThroughTheVirtualInterfaceReconnectsEveryNode) {
	const std::size_t dim = 8, n = 3000;
	// Many exact duplicates: the hardest case for pruning, as in hnsw_test.
	auto base = Clustered(300, dim, 5, 21);
	std::vector<float> data;
	for (std::size_t i = 0; i < n; ++i)
		data.insert(data.end(), base.begin() + static_cast<std::ptrdiff_t>((i % 300) * dim),
		            base.begin() + static_cast<std::ptrdiff_t>((i % 300 + 1) * dim));
	const Params p{8, 32};
	Block b(SharedGraph::BytesFor(n, dim, p, 0));
	ASSERT_TRUE(SharedGraph::Init(b.p, b.bytes, n, dim, Metric::L2, p, 0).ok());
	std::vector<NodeId> id_of_row;
	BuildConcurrently(b, data, dim, 3, id_of_row);
	SharedGraph g(b.p, b.bytes);
	NeverCancel never;
	for (int round = 0; round < 4 && CountUnreachable(g) > 0; ++round) {
		NodeId ep;
		int lvl;
		ASSERT_TRUE(g.EntryPoint(ep, lvl).ok());
		std::vector<std::uint32_t> offsets(n + 1), targets, lost;
		for (std::size_t i = 0; i < n; ++i) {
			offsets[i] = static_cast<std::uint32_t>(targets.size());
			for (int l = 0; l <= g.level(i); ++l)
				for (std::uint32_t x : g.neighbor_ids(i, l))
					targets.push_back(x);
		}
		offsets[n] = static_cast<std::uint32_t>(targets.size());
		std::vector<std::uint8_t> live(n, 1);
		ASSERT_TRUE(FindUnreachable(offsets, targets, static_cast<std::uint32_t>(ep), live, lost).ok());
		if (round == 3) {
			std::vector<NodeId> ids(n);
			for (std::size_t i = 0; i < n; ++i)
				ids[i] = i;
			ASSERT_TRUE(ForceLinks(g, p, offsets, targets, ids, static_cast<std::uint32_t>(ep), lost).ok());
			break;
		}
		for (std::uint32_t x : lost)
			ASSERT_TRUE(Repair(g, x, g.level(x), g.vector_data(x), dim, p, never).ok());
	}
	EXPECT_EQ(CountUnreachable(g), 0u);
	CheckLists(g);
}

} // namespace
} // namespace s5v::hnsw
