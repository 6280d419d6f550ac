// The merged search over hand-made candidate streams, the graph stream, and the IVF stream against brute force.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "hnsw.h"
#include "inverted_lists.h"
#include "merge.h"

namespace s5v {
namespace {

// A stream that hands out the given rows in the given order. Its bound is the next row's distance (honest when
// the rows are sorted), or a fixed loose value; it can fail at its n-th call of Next.
class HandStream final : public CandidateStream {
public:
	explicit HandStream(std::vector<ScoredRow> rows) : rows_(std::move(rows)) {}

	static constexpr int kNoFailure = -1;
	int fail_at = kNoFailure; // the call of Next (0-based) that fails
	bool loose = false;       // bound = loose_bound while rows remain
	float loose_bound = kUnknownBound;
	int calls = 0;

	Status Next(ScoredRow &out, bool &done) override {
		if (calls++ == fail_at)
			return Status::Corrupt("stream failed");
		done = pos_ >= rows_.size();
		if (!done)
			out = rows_[pos_++];
		return Status::Ok();
	}
	float LowerBound() const override {
		if (pos_ >= rows_.size())
			return kNoMoreRows;
		return loose ? loose_bound : rows_[pos_].distance;
	}

private:
	std::vector<ScoredRow> rows_;
	std::size_t pos_ = 0;
};

std::vector<ScoredRow> Drain(MergedSearch &m, Status *status = nullptr) {
	std::vector<ScoredRow> out;
	for (;;) {
		ScoredRow r;
		bool done;
		Status st = m.Next(r, done);
		if (!st.ok()) {
			if (status)
				*status = st;
			return out;
		}
		if (done)
			break;
		out.push_back(r);
	}
	if (status)
		*status = Status::Ok();
	return out;
}

std::vector<RowId> Rows(const std::vector<ScoredRow> &v) {
	std::vector<RowId> out;
	for (const ScoredRow &r : v)
		out.push_back(r.row);
	return out;
}

std::vector<float> Distances(const std::vector<ScoredRow> &v) {
	std::vector<float> out;
	for (const ScoredRow &r : v)
		out.push_back(r.distance);
	return out;
}

TEST(Merge, StrictInterleavesSortedStreams) {
	HandStream a({{1, 10}, {3, 30}, {5, 50}});
	HandStream b({{2, 20}, {4, 40}, {6, 60}});
	MergedSearch m(MergeOrder::Strict);
	ASSERT_TRUE(m.AddStream(&a).ok());
	ASSERT_TRUE(m.AddStream(&b).ok());
	auto out = Drain(m);
	EXPECT_EQ(Rows(out), (std::vector<RowId>{10, 20, 30, 40, 50, 60}));
	EXPECT_EQ(Distances(out), (std::vector<float>{1, 2, 3, 4, 5, 6}));
	EXPECT_EQ(m.returned(), 6u);
}

TEST(Merge, NoStreamsAndEmptyStreams) {
	MergedSearch none(MergeOrder::Strict);
	EXPECT_TRUE(Drain(none).empty());
	for (MergeOrder order : {MergeOrder::Strict, MergeOrder::Relaxed}) {
		HandStream x({}), y({}), z({{7, 70}});
		MergedSearch m(order);
		ASSERT_TRUE(m.AddStream(&x).ok());
		ASSERT_TRUE(m.AddStream(&y).ok());
		ASSERT_TRUE(m.AddStream(&z).ok());
		auto out = Drain(m);
		ASSERT_EQ(out.size(), 1u);
		EXPECT_EQ(out[0].row, 70u);
		// done stays done
		ScoredRow r;
		bool done = false;
		EXPECT_TRUE(m.Next(r, done).ok());
		EXPECT_TRUE(done);
	}
	EXPECT_FALSE(none.AddStream(nullptr).ok());
}

TEST(Merge, TiesComeOutOnceEachInRowOrder) {
	HandStream a({{1, 30}, {1, 10}, {2, 50}});
	HandStream b({{1, 20}, {2, 40}});
	MergedSearch m(MergeOrder::Strict);
	ASSERT_TRUE(m.AddStream(&a).ok());
	ASSERT_TRUE(m.AddStream(&b).ok());
	auto out = Drain(m);
	// every row once; equal distances never block each other
	ASSERT_EQ(out.size(), 5u);
	EXPECT_EQ(Distances(out), (std::vector<float>{1, 1, 1, 2, 2}));
	const std::vector<RowId> ids = Rows(out);
	std::set<RowId> rows(ids.begin(), ids.end());
	EXPECT_EQ(rows.size(), 5u);
}

TEST(Merge, DuplicateAcrossStreamsStrictKeepsSmallestDistance) {
	// Row 100 is in both streams: at 5 in a, at 2 in b (a row that moves between tiers).
	HandStream a({{1, 10}, {5, 100}, {6, 60}});
	HandStream b({{2, 100}, {3, 30}, {7, 70}});
	MergedSearch m(MergeOrder::Strict);
	ASSERT_TRUE(m.AddStream(&a).ok());
	ASSERT_TRUE(m.AddStream(&b).ok());
	auto out = Drain(m);
	EXPECT_EQ(Rows(out), (std::vector<RowId>{10, 100, 30, 60, 70}));
	EXPECT_EQ(Distances(out), (std::vector<float>{1, 2, 3, 6, 7}));
	EXPECT_TRUE(m.HasReturned(100));
	EXPECT_FALSE(m.HasReturned(5));
}

TEST(Merge, DuplicateAcrossStreamsRelaxedIsReturnedOnce) {
	// Row 100: in a at 9; in b at 4, but b hands it out last (b is not sorted, its bound is unknown).
	// Relaxed returns a's copy (it came first); strict waits for b and returns the nearer copy.
	for (MergeOrder order : {MergeOrder::Relaxed, MergeOrder::Strict}) {
		HandStream a({{1, 10}, {9, 100}});
		HandStream b({{2, 20}, {10, 30}, {4, 100}});
		b.loose = true;
		MergedSearch m(order);
		ASSERT_TRUE(m.AddStream(&a).ok());
		ASSERT_TRUE(m.AddStream(&b).ok());
		auto out = Drain(m);
		EXPECT_EQ(Rows(out), (std::vector<RowId>{10, 20, 100, 30}));
		const std::vector<float> want =
		    order == MergeOrder::Relaxed ? std::vector<float>{1, 2, 9, 10} : std::vector<float>{1, 2, 4, 10};
		EXPECT_EQ(Distances(out), want);
	}
}

TEST(Merge, DuplicateInsideOneStream) {
	HandStream a({{1, 10}, {2, 10}, {3, 30}});
	MergedSearch m(MergeOrder::Strict);
	ASSERT_TRUE(m.AddStream(&a).ok());
	EXPECT_EQ(Rows(Drain(m)), (std::vector<RowId>{10, 30}));
}

// A stream whose rows are out of order with a loose (unknown) bound: strict waits for it, relaxed does not.
TEST(Merge, StrictVsRelaxedWithLooseBounds) {
	auto make_unsorted = [] {
		HandStream s({{5, 50}, {1, 10}, {3, 30}});
		s.loose = true; // -inf while rows remain
		return s;
	};
	{
		HandStream u = make_unsorted();
		HandStream b({{2, 20}, {4, 40}});
		MergedSearch m(MergeOrder::Strict);
		ASSERT_TRUE(m.AddStream(&u).ok());
		ASSERT_TRUE(m.AddStream(&b).ok());
		auto out = Drain(m);
		// the unknown bound makes strict read all of u first: global order
		EXPECT_EQ(Distances(out), (std::vector<float>{1, 2, 3, 4, 5}));
		EXPECT_EQ(u.calls, 3); // its bound became +inf after the 3 rows: never asked again
	}
	{
		HandStream u = make_unsorted();
		HandStream b({{2, 20}, {4, 40}});
		MergedSearch m(MergeOrder::Relaxed);
		ASSERT_TRUE(m.AddStream(&u).ok());
		ASSERT_TRUE(m.AddStream(&b).ok());
		auto out = Drain(m);
		// relaxed follows u's own order, merged head by head with b
		EXPECT_EQ(Distances(out), (std::vector<float>{2, 4, 5, 1, 3}));
	}
	{
		// a loose but finite bound (0): strict reads u only as far as needed for each emission
		HandStream u({{5, 50}, {6, 60}});
		u.loose = true;
		u.loose_bound = 4.5f;
		HandStream b({{1, 10}, {2, 20}, {4, 40}, {8, 80}});
		MergedSearch m(MergeOrder::Strict);
		ASSERT_TRUE(m.AddStream(&u).ok());
		ASSERT_TRUE(m.AddStream(&b).ok());
		ScoredRow r;
		bool done;
		ASSERT_TRUE(m.Next(r, done).ok());
		EXPECT_EQ(r.row, 10u);
		EXPECT_EQ(u.calls, 0); // 1 <= 4.5: u was not read
		auto rest = Drain(m);
		EXPECT_EQ(Distances(rest), (std::vector<float>{2, 4, 5, 6, 8}));
	}
}

TEST(Merge, StreamFailingMidwayStopsTheMerge) {
	for (MergeOrder order : {MergeOrder::Strict, MergeOrder::Relaxed}) {
		for (int fail_at = 0; fail_at < 3; ++fail_at) {
			HandStream a({{1, 10}, {3, 30}, {5, 50}});
			HandStream b({{2, 20}, {4, 40}, {6, 60}});
			b.fail_at = fail_at;
			MergedSearch m(order);
			ASSERT_TRUE(m.AddStream(&a).ok());
			ASSERT_TRUE(m.AddStream(&b).ok());
			Status st;
			auto out = Drain(m, &st);
			EXPECT_EQ(st.code(), StatusCode::Corrupt) << "fail_at " << fail_at;
			EXPECT_LE(out.size(), static_cast<std::size_t>(2 * fail_at + 1));
			// what was returned before the failure is a prefix of the right answer
			std::vector<float> want{1, 2, 3, 4, 5, 6};
			EXPECT_EQ(Distances(out), std::vector<float>(want.begin(), want.begin() + out.size()));
			// nothing more afterwards: the same error, no row
			const int calls_a = a.calls, calls_b = b.calls;
			ScoredRow r{-1, 999};
			bool done = false;
			EXPECT_EQ(m.Next(r, done).code(), StatusCode::Corrupt);
			EXPECT_EQ(r.row, 999u);
			EXPECT_EQ(a.calls, calls_a);
			EXPECT_EQ(b.calls, calls_b);
			EXPECT_FALSE(m.AddStream(&a).ok());
		}
	}
}

TEST(Merge, StreamAddedLateDoesNotRepeatRows) {
	HandStream a({{1, 10}, {2, 20}});
	MergedSearch m(MergeOrder::Strict);
	ASSERT_TRUE(m.AddStream(&a).ok());
	auto first = Drain(m);
	EXPECT_EQ(Rows(first), (std::vector<RowId>{10, 20}));
	// an exact pass over everything joins after the first stream ran out
	SortedRowsStream exact({{2, 20}, {1, 10}, {0.5f, 5}, {3, 30}});
	ASSERT_TRUE(m.AddStream(&exact).ok());
	EXPECT_EQ(Rows(Drain(m)), (std::vector<RowId>{5, 30}));
}

TEST(Merge, RandomStreamsStrictEqualsSortedUnion) {
	std::mt19937 rng(7);
	for (int trial = 0; trial < 50; ++trial) {
		const int nstreams = 1 + trial % 4;
		std::vector<std::vector<ScoredRow>> data(nstreams);
		std::map<RowId, float> best;
		for (int s = 0; s < nstreams; ++s) {
			const int n = rng() % 40;
			for (int i = 0; i < n; ++i) {
				ScoredRow r{static_cast<float>(rng() % 100), static_cast<RowId>(rng() % 60)};
				data[s].push_back(r);
				auto it = best.find(r.row);
				if (it == best.end() || r.distance < it->second)
					best[r.row] = r.distance;
			}
			std::sort(data[s].begin(), data[s].end(),
			          [](const ScoredRow &a, const ScoredRow &b) { return a.distance < b.distance; });
		}
		std::vector<std::unique_ptr<HandStream>> streams;
		MergedSearch m(MergeOrder::Strict);
		for (auto &d : data) {
			streams.push_back(std::make_unique<HandStream>(d));
			ASSERT_TRUE(m.AddStream(streams.back().get()).ok());
		}
		auto out = Drain(m);
		ASSERT_EQ(out.size(), best.size());
		for (std::size_t i = 0; i < out.size(); ++i) {
			EXPECT_EQ(out[i].distance, best[out[i].row]);
			if (i > 0) {
				EXPECT_LE(out[i - 1].distance, out[i].distance);
			}
		}
	}
}

// ----- the graph as a stream

class IdentityRows final : public NodeRows {
public:
	std::set<hnsw::NodeId> hidden;
	bool RowOf(hnsw::NodeId node, RowId &out) const override {
		if (hidden.count(node))
			return false;
		out = node + 1000;
		return true;
	}
};

TEST(GraphStream, ReturnsTheSearchersResultsAsRows) {
	const std::size_t dim = 8, n = 300;
	std::mt19937 rng(3);
	std::normal_distribution<float> g;
	std::vector<float> data(n * dim);
	for (float &x : data)
		x = g(rng);
	hnsw::InMemoryGraph graph(dim, Metric::L2, hnsw::Params{8, 32});
	NeverCancel never;
	std::uint64_t bits = 1;
	for (std::size_t i = 0; i < n; ++i) {
		hnsw::NodeId id;
		bits = bits * 6364136223846793005ULL + 1442695040888963407ULL;
		ASSERT_TRUE(graph.AddAndInsert(&data[i * dim], bits, never, id).ok());
	}
	hnsw::Searcher searcher(graph, dim, never);
	hnsw::SearchParams sp;
	sp.ef_search = 20;
	ASSERT_TRUE(searcher.Start(&data[0], sp).ok());
	IdentityRows rows;
	rows.hidden = {0};
	GraphStream stream(searcher, rows);
	EXPECT_EQ(stream.LowerBound(), kUnknownBound);
	MergedSearch m(MergeOrder::Strict);
	ASSERT_TRUE(m.AddStream(&stream).ok());
	auto out = Drain(m);
	ASSERT_EQ(out.size(), n - 1); // iterative: every node but the hidden one
	std::set<RowId> seen;
	for (const ScoredRow &r : out) {
		EXPECT_GE(r.row, 1001u);
		seen.insert(r.row);
	}
	EXPECT_EQ(seen.size(), n - 1);
	EXPECT_EQ(stream.LowerBound(), kNoMoreRows);
	// the first round is nearest first
	for (std::size_t i = 1; i < 19; ++i)
		EXPECT_LE(out[i - 1].distance, out[i].distance);
}

// A graph store whose reads start failing after `ok_calls` calls (a page read that raises an error).
class BreakingStore final : public hnsw::GraphStore {
public:
	BreakingStore(hnsw::InMemoryGraph &g, int ok_calls) : g_(g), left_(ok_calls) {}
	int calls_after_failure = 0;
	Status EntryPoint(hnsw::NodeId &node, int &level) override {
		S5V_RETURN_IF_ERROR(Tick());
		return g_.EntryPoint(node, level);
	}
	Status Distances(const float *query, std::span<const hnsw::NodeId> nodes, std::span<float> out,
	                 std::span<std::uint8_t> pass) override {
		S5V_RETURN_IF_ERROR(Tick());
		return g_.Distances(query, nodes, out, pass);
	}
	Status Neighbors(hnsw::NodeId node, int level, std::vector<hnsw::NodeId> &out) override {
		S5V_RETURN_IF_ERROR(Tick());
		return g_.Neighbors(node, level, out);
	}
	Status Vector(hnsw::NodeId node, std::vector<float> &out) override {
		S5V_RETURN_IF_ERROR(Tick());
		return g_.Vector(node, out);
	}

private:
	Status Tick() {
		if (left_-- > 0)
			return Status::Ok();
		calls_after_failure += left_ < -1;
		return Status(StatusCode::External, "page read failed");
	}
	hnsw::InMemoryGraph &g_;
	int left_;
};

// The graph stream in a merge with another stream: when the graph's store fails mid-scan (after the first
// round, while widening), the merge returns that error and nothing more, and the store is not called again.
TEST(GraphStream, StoreFailingMidScanStopsTheMerge) {
	const std::size_t dim = 8, n = 400;
	std::mt19937 rng(4);
	std::normal_distribution<float> g;
	std::vector<float> data(n * dim);
	for (float &x : data)
		x = g(rng);
	hnsw::InMemoryGraph graph(dim, Metric::L2, hnsw::Params{8, 32});
	NeverCancel never;
	std::uint64_t bits = 5;
	for (std::size_t i = 0; i < n; ++i) {
		hnsw::NodeId id;
		bits = bits * 6364136223846793005ULL + 1442695040888963407ULL;
		ASSERT_TRUE(graph.AddAndInsert(&data[i * dim], bits, never, id).ok());
	}
	int mid_scan = 0;
	for (int ok_calls : {0, 1, 5, 40, 120, 200, 400}) {
		BreakingStore store(graph, ok_calls);
		hnsw::Searcher searcher(store, dim, never);
		hnsw::SearchParams sp;
		sp.ef_search = 10;
		Status started = searcher.Start(&data[0], sp);
		if (!started.ok()) {
			// the first pass runs in Start: its error is the scan's (am_scan raises it before any row)
			EXPECT_EQ(started.code(), StatusCode::External);
			continue;
		}
		mid_scan++;
		IdentityRows rows;
		GraphStream hot(searcher, rows);
		HandStream other({{0.0f, 1}, {1e9f, 2}});
		MergedSearch m(MergeOrder::Strict);
		ASSERT_TRUE(m.AddStream(&hot).ok());
		ASSERT_TRUE(m.AddStream(&other).ok());
		Status st;
		auto out = Drain(m, &st);
		EXPECT_EQ(st.code(), StatusCode::External) << "ok_calls " << ok_calls;
		EXPECT_EQ(st.message(), "page read failed");
		EXPECT_LT(out.size(), n);
		EXPECT_EQ(store.calls_after_failure, 0);
		ScoredRow r;
		bool done = false;
		EXPECT_EQ(m.Next(r, done).code(), StatusCode::External); // and again, nothing emitted
	}
	EXPECT_GE(mid_scan, 2);
}

// ----- inverted lists and the IVF stream

struct IvfFixture {
	std::size_t dim = 6, nlists = 8, n = 400;
	std::vector<float> data;
	std::unique_ptr<ivf::InMemoryInvertedLists> lists;
	std::vector<ivf::ListId> list_of;

	explicit IvfFixture(std::size_t chunk_rows) {
		std::mt19937 rng(11);
		std::normal_distribution<float> g;
		std::vector<float> centroids(nlists * dim);
		for (float &c : centroids)
			c = 3 * g(rng);
		data.resize(n * dim);
		lists = std::make_unique<ivf::InMemoryInvertedLists>(dim, centroids, chunk_rows);
		for (std::size_t i = 0; i < n; ++i) {
			const std::size_t c = rng() % nlists;
			for (std::size_t j = 0; j < dim; ++j)
				data[i * dim + j] = centroids[c * dim + j] + g(rng);
			ivf::ListId l = lists->NearestList(Metric::L2, &data[i * dim]);
			list_of.push_back(l);
			EXPECT_TRUE(lists->Add(l, i, static_cast<std::int64_t>(i), &data[i * dim]).ok());
		}
	}

	// Brute force over the rows of the given lists (all lists if empty), live and passing `keep`.
	std::vector<ScoredRow> Exact(const float *q, const std::set<ivf::ListId> &within,
	                             const std::set<RowId> &deleted = {}) const {
		std::vector<ScoredRow> out;
		for (std::size_t i = 0; i < n; ++i) {
			if (deleted.count(i) || (!within.empty() && !within.count(list_of[i])))
				continue;
			out.push_back({IndexDistance(Metric::L2, q, &data[i * dim], dim), i});
		}
		std::sort(out.begin(), out.end(), [](const ScoredRow &a, const ScoredRow &b) {
			return a.distance < b.distance || (a.distance == b.distance && a.row < b.row);
		});
		return out;
	}

	std::set<ivf::ListId> NearestLists(const float *q, std::size_t k) const {
		std::span<const float> cs;
		EXPECT_TRUE(lists->Centroids(cs).ok());
		std::vector<std::pair<float, ivf::ListId>> d;
		for (std::size_t i = 0; i < nlists; ++i)
			d.push_back({IndexDistance(Metric::L2, q, &cs[i * dim], dim), static_cast<ivf::ListId>(i)});
		std::sort(d.begin(), d.end());
		std::set<ivf::ListId> out;
		for (std::size_t i = 0; i < k; ++i)
			out.insert(d[i].second);
		return out;
	}
};

std::vector<ScoredRow> DrainStream(CandidateStream &s, std::size_t limit = ~std::size_t{0}) {
	std::vector<ScoredRow> out;
	while (out.size() < limit) {
		ScoredRow r;
		bool done;
		EXPECT_TRUE(s.Next(r, done).ok());
		if (done)
			break;
		out.push_back(r);
	}
	return out;
}

TEST(IvfStream, AllListsEqualsBruteForce) {
	IvfFixture f(7);
	NeverCancel never;
	std::vector<float> q(f.dim, 0.25f);
	ivf::IvfStream s(*f.lists, Metric::L2, never);
	ASSERT_TRUE(s.Start(q.data(), ivf::IvfSearchParams{f.nlists, 0, true}).ok());
	auto got = DrainStream(s);
	auto want = f.Exact(q.data(), {});
	ASSERT_EQ(got.size(), want.size());
	for (std::size_t i = 0; i < got.size(); ++i) {
		EXPECT_EQ(got[i].row, want[i].row);
		EXPECT_EQ(got[i].distance, want[i].distance);
	}
	EXPECT_EQ(f.lists->chunks_held(), 0u);
	EXPECT_EQ(s.LowerBound(), kNoMoreRows);
}

TEST(IvfStream, FirstRoundIsExactWithinTheProbedListsThenWidens) {
	IvfFixture f(16);
	NeverCancel never;
	for (std::size_t qi = 0; qi < 10; ++qi) {
		const float *q = &f.data[qi * 37 * f.dim];
		ivf::IvfStream s(*f.lists, Metric::L2, never);
		ASSERT_TRUE(s.Start(q, ivf::IvfSearchParams{2, 6, true}).ok());
		auto within = f.NearestLists(q, 2);
		auto want_first = f.Exact(q, within);
		auto first = DrainStream(s, want_first.size());
		ASSERT_EQ(first.size(), want_first.size());
		for (std::size_t i = 0; i < first.size(); ++i)
			EXPECT_EQ(first[i].row, want_first[i].row);
		EXPECT_EQ(s.lists_read(), 2u);
		EXPECT_EQ(s.LowerBound(), kUnknownBound); // round used up, more lists may be read
		// asking for more widens, two lists at a time, up to max_probes = 6
		auto rest = DrainStream(s);
		EXPECT_EQ(s.lists_read(), 6u);
		auto within6 = f.NearestLists(q, 6);
		EXPECT_EQ(first.size() + rest.size(), f.Exact(q, within6).size());
		std::set<RowId> all;
		for (auto &r : first)
			all.insert(r.row);
		for (auto &r : rest)
			all.insert(r.row);
		EXPECT_EQ(all.size(), first.size() + rest.size()); // no row twice
		EXPECT_EQ(f.lists->chunks_held(), 0u);
	}
	EXPECT_GT(f.lists->prefetched(), 0u);
}

// Strict order (params.bounded): the stream widens by itself when a list it has not read may hold a row nearer
// than the next waiting one, so its output is the exact order over every list it may read; the first k rows are
// the exact k nearest, usually without reading every list.
TEST(IvfStream, BoundedIsExactOrderAndReadsOnlyWhatTheBoundsNeed) {
	IvfFixture f(16);
	NeverCancel never;
	std::size_t lists_for_top10 = 0;
	for (std::size_t qi = 0; qi < 10; ++qi) {
		const float *q = &f.data[qi * 37 * f.dim];
		ivf::IvfSearchParams p{1, 0, true};
		p.bounded = true;
		ivf::IvfStream top(*f.lists, Metric::L2, never);
		ASSERT_TRUE(top.Start(q, p).ok());
		auto want = f.Exact(q, {});
		auto first = DrainStream(top, 10);
		ASSERT_EQ(first.size(), 10u);
		for (std::size_t i = 0; i < first.size(); ++i)
			EXPECT_EQ(first[i].row, want[i].row) << "query " << qi << " rank " << i;
		EXPECT_LE(top.LowerBound(), want[10].distance);
		lists_for_top10 += top.lists_read();
		auto rest = DrainStream(top);
		ASSERT_EQ(first.size() + rest.size(), want.size());
		for (std::size_t i = 0; i < rest.size(); ++i)
			EXPECT_EQ(rest[i].row, want[10 + i].row);
		EXPECT_EQ(f.lists->chunks_held(), 0u);
	}
	EXPECT_LT(lists_for_top10, 10 * f.nlists); // the bounds prune lists
	// The unbounded stream with the same probes returns the first list's rows before any nearer one of a later
	// list: it is out of order on at least one query (the inversion the bounds remove).
	std::size_t inversions = 0;
	for (std::size_t qi = 0; qi < 10; ++qi) {
		ivf::IvfStream s(*f.lists, Metric::L2, never);
		ASSERT_TRUE(s.Start(&f.data[qi * 37 * f.dim], ivf::IvfSearchParams{1, 0, true}).ok());
		auto all = DrainStream(s);
		for (std::size_t i = 1; i < all.size(); ++i)
			inversions += all[i].distance < all[i - 1].distance;
	}
	EXPECT_GT(inversions, 0u);
}

// Lists behind a "network": Prefetch fetches the lists it names that were not fetched before (one round trip per
// call that fetches something); reading a list never fetched costs a round trip of its own.
class FetchCountingLists final : public ivf::InvertedLists {
public:
	explicit FetchCountingLists(ivf::InvertedLists &inner) : inner_(inner) {}
	std::size_t list_count() const override { return inner_.list_count(); }
	std::size_t dim() const override { return inner_.dim(); }
	Status Centroids(std::span<const float> &out) override { return inner_.Centroids(out); }
	Status Prefetch(std::span<const ivf::ListId> lists) override {
		bool fetched = false;
		for (ivf::ListId l : lists)
			fetched = fetched_.insert(l).second || fetched;
		round_trips += fetched ? 1 : 0;
		return inner_.Prefetch(lists);
	}
	Status ChunkCount(ivf::ListId list, std::size_t &out) override {
		if (fetched_.insert(list).second)
			round_trips++;
		return inner_.ChunkCount(list, out);
	}
	Status GetChunk(ivf::ListId list, std::size_t index, ivf::ListChunk &out) override {
		return inner_.GetChunk(list, index, out);
	}
	void ReleaseChunk(ivf::ListChunk &chunk) noexcept override { inner_.ReleaseChunk(chunk); }
	void Reset() {
		fetched_.clear();
		round_trips = 0;
	}
	std::size_t round_trips = 0;

private:
	ivf::InvertedLists &inner_;
	std::set<ivf::ListId> fetched_;
};

// lookahead_rows: the rounds a bounded stream needs for its first k rows are prefetched in one call after the first
// round, so a top-k costs at most two fetches (round trips for remote parts) instead of one per round; the rows
// and their order are the same.
TEST(IvfStream, BoundedLookaheadFetchesTheTopKInTwoRoundTrips) {
	const std::size_t dim = 4, nlists = 64, n = 3000, k = 10;
	std::mt19937 rng(5);
	std::normal_distribution<float> g;
	std::vector<float> centroids(nlists * dim);
	for (float &c : centroids)
		c = 4 * g(rng);
	ivf::InMemoryInvertedLists mem(dim, centroids, 32);
	std::vector<float> data(n * dim);
	for (std::size_t i = 0; i < n; ++i) {
		const std::size_t c = rng() % nlists;
		for (std::size_t j = 0; j < dim; ++j)
			data[i * dim + j] = centroids[c * dim + j] + 1.5f * g(rng);
		ASSERT_TRUE(mem.Add(mem.NearestList(Metric::L2, &data[i * dim]), i, 0, &data[i * dim]).ok());
	}
	FetchCountingLists lists(mem);
	NeverCancel never;
	std::size_t trips_without = 0, trips_with = 0, max_with = 0, more_than_two_without = 0;
	for (std::size_t qi = 0; qi < 20; ++qi) {
		const float *q = &data[qi * 131 * dim];
		std::vector<ScoredRow> want;
		for (std::size_t i = 0; i < n; ++i)
			want.push_back({IndexDistance(Metric::L2, q, &data[i * dim], dim), i});
		std::sort(want.begin(), want.end(), [](const ScoredRow &a, const ScoredRow &b) {
			return a.distance < b.distance || (a.distance == b.distance && a.row < b.row);
		});
		std::vector<ScoredRow> got[2];
		for (int with = 0; with < 2; ++with) {
			ivf::IvfSearchParams p{2, 0, true};
			p.bounded = true;
			p.lookahead_rows = with ? k : 0;
			lists.Reset();
			ivf::IvfStream s(lists, Metric::L2, never);
			ASSERT_TRUE(s.Start(q, p).ok());
			got[with] = DrainStream(s, k);
			ASSERT_EQ(got[with].size(), k);
			for (std::size_t i = 0; i < k; ++i)
				EXPECT_EQ(got[with][i].row, want[i].row) << "query " << qi << " rank " << i << " lookahead " << with;
			(with ? trips_with : trips_without) += lists.round_trips;
			if (with)
				max_with = std::max(max_with, lists.round_trips);
			else
				more_than_two_without += lists.round_trips > 2;
			auto rest = DrainStream(s); // the rest still comes in exact order
			ASSERT_EQ(k + rest.size(), want.size());
			for (std::size_t i = 0; i < rest.size(); ++i)
				EXPECT_EQ(rest[i].row, want[k + i].row);
		}
	}
	EXPECT_LE(max_with, 2u);
	EXPECT_GT(more_than_two_without, 0u); // the case it is for: without lookahead some top-10s take 3+ round trips
	EXPECT_LT(trips_with, trips_without);
	EXPECT_EQ(mem.chunks_held(), 0u);
}

TEST(IvfStream, BoundedCosineIsExactOrder) {
	// Unit vectors and unit centroids, as the cosine index stores them.
	IvfFixture f(16);
	auto unit = [&](float *v) {
		double n = 0;
		for (std::size_t j = 0; j < f.dim; ++j)
			n += (double)v[j] * v[j];
		for (std::size_t j = 0; j < f.dim; ++j)
			v[j] = (float)(v[j] / std::sqrt(n));
	};
	std::span<const float> cs;
	ASSERT_TRUE(f.lists->Centroids(cs).ok());
	std::vector<float> cents(cs.begin(), cs.end());
	for (std::size_t l = 0; l < f.nlists; ++l)
		unit(&cents[l * f.dim]);
	ivf::InMemoryInvertedLists lists(f.dim, cents, 16);
	std::vector<float> data = f.data;
	for (std::size_t i = 0; i < f.n; ++i) {
		unit(&data[i * f.dim]);
		ASSERT_TRUE(lists.Add(lists.NearestList(Metric::Cosine, &data[i * f.dim]), i, 0, &data[i * f.dim]).ok());
	}
	NeverCancel never;
	for (std::size_t qi = 0; qi < 10; ++qi) {
		const float *q = &data[qi * 37 * f.dim];
		std::vector<ScoredRow> want;
		for (std::size_t i = 0; i < f.n; ++i)
			want.push_back({IndexDistance(Metric::Cosine, q, &data[i * f.dim], f.dim), i});
		std::sort(want.begin(), want.end(), [](const ScoredRow &a, const ScoredRow &b) {
			return a.distance < b.distance || (a.distance == b.distance && a.row < b.row);
		});
		ivf::IvfSearchParams p{1, 0, true};
		p.bounded = true;
		ivf::IvfStream s(lists, Metric::Cosine, never);
		ASSERT_TRUE(s.Start(q, p).ok());
		auto got = DrainStream(s);
		ASSERT_EQ(got.size(), want.size());
		for (std::size_t i = 0; i < got.size(); ++i)
			EXPECT_EQ(got[i].distance, want[i].distance) << "query " << qi << " rank " << i;
	}
}

TEST(IvfStream, NotIterativeStopsAtProbes) {
	IvfFixture f(16);
	NeverCancel never;
	const float *q = &f.data[0];
	ivf::IvfStream s(*f.lists, Metric::L2, never);
	ASSERT_TRUE(s.Start(q, ivf::IvfSearchParams{3, 0, false}).ok());
	auto got = DrainStream(s);
	EXPECT_EQ(got.size(), f.Exact(q, f.NearestLists(q, 3)).size());
	EXPECT_EQ(s.lists_read(), 3u);
}

TEST(IvfStream, DeletedAndFilteredRowsAreSkipped) {
	IvfFixture f(5);
	NeverCancel never;
	std::set<RowId> deleted;
	for (RowId r = 0; r < f.n; r += 3) {
		ASSERT_TRUE(f.lists->MarkDeleted(r));
		deleted.insert(r);
	}
	EXPECT_FALSE(f.lists->MarkDeleted(100000));
	std::vector<float> q(f.dim, -0.5f);
	ivf::IvfStream s(*f.lists, Metric::L2, never);
	ASSERT_TRUE(
	    s.Start(q.data(), ivf::IvfSearchParams{1, 0, true}, [](RowId, std::int64_t age) { return age % 2 == 0; }).ok());
	auto got = DrainStream(s);
	std::vector<ScoredRow> want;
	for (const ScoredRow &r : f.Exact(q.data(), {}, deleted))
		if (r.row % 2 == 0)
			want.push_back(r);
	ASSERT_EQ(got.size(), want.size());
	std::set<RowId> g, w;
	for (auto &r : got)
		g.insert(r.row);
	for (auto &r : want)
		w.insert(r.row);
	EXPECT_EQ(g, w);
}

TEST(IvfStream, MergedWithAGraphLikeStreamDeduplicates) {
	// The same rows in two tiers (a move in progress): the merge returns each once at its distance.
	IvfFixture f(8);
	NeverCancel never;
	std::vector<float> q(f.dim, 0.0f);
	auto exact = f.Exact(q.data(), {});
	std::vector<ScoredRow> hot(exact.begin(), exact.begin() + 50); // the 50 nearest are also "hot"
	HandStream hs(hot);
	ivf::IvfStream cold(*f.lists, Metric::L2, never);
	ASSERT_TRUE(cold.Start(q.data(), ivf::IvfSearchParams{f.nlists, 0, true}).ok());
	MergedSearch m(MergeOrder::Strict);
	ASSERT_TRUE(m.AddStream(&hs).ok());
	ASSERT_TRUE(m.AddStream(&cold).ok());
	auto out = Drain(m);
	ASSERT_EQ(out.size(), exact.size());
	for (std::size_t i = 0; i < out.size(); ++i)
		EXPECT_EQ(out[i].row, exact[i].row);
}

class FailingLists final : public ivf::InvertedLists {
public:
	explicit FailingLists(ivf::InvertedLists &inner, int fail_at) : inner_(inner), fail_at_(fail_at) {}
	std::size_t list_count() const override { return inner_.list_count(); }
	std::size_t dim() const override { return inner_.dim(); }
	Status Centroids(std::span<const float> &out) override { return inner_.Centroids(out); }
	Status ChunkCount(ivf::ListId list, std::size_t &out) override { return inner_.ChunkCount(list, out); }
	Status GetChunk(ivf::ListId list, std::size_t index, ivf::ListChunk &out) override {
		if (calls_++ == fail_at_)
			return Status::Unavailable("segment fetch failed");
		return inner_.GetChunk(list, index, out);
	}
	void ReleaseChunk(ivf::ListChunk &chunk) noexcept override { inner_.ReleaseChunk(chunk); }

private:
	ivf::InvertedLists &inner_;
	int fail_at_;
	int calls_ = 0;
};

TEST(IvfStream, ChunkErrorPropagatesAndNothingIsHeld) {
	IvfFixture f(16);
	NeverCancel never;
	std::vector<float> q(f.dim, 0.1f);
	for (int fail_at = 0; fail_at < 5; ++fail_at) {
		FailingLists failing(*f.lists, fail_at);
		ivf::IvfStream s(failing, Metric::L2, never);
		ASSERT_TRUE(s.Start(q.data(), ivf::IvfSearchParams{f.nlists, 0, true}).ok());
		ScoredRow r;
		bool done;
		EXPECT_EQ(s.Next(r, done).code(), StatusCode::Unavailable);
		EXPECT_EQ(f.lists->chunks_held(), 0u);
	}
}

// Lists that score their rows themselves (ScoresQuery, as the cold tier's page lists do): chunks carry distances
// and no vectors. `lie` makes one chunk's distances array a row short.
class ScoringLists final : public ivf::InvertedLists {
public:
	ScoringLists(ivf::InMemoryInvertedLists &inner, bool lie = false) : inner_(inner), lie_(lie) {}
	std::size_t list_count() const override { return inner_.list_count(); }
	std::size_t dim() const override { return inner_.dim(); }
	Status Centroids(std::span<const float> &out) override { return inner_.Centroids(out); }
	bool ScoresQuery(Metric metric, std::span<const float> query) override {
		metric_ = metric;
		query_ = query;
		asked++;
		return true;
	}
	Status ChunkCount(ivf::ListId list, std::size_t &out) override { return inner_.ChunkCount(list, out); }
	Status GetChunk(ivf::ListId list, std::size_t index, ivf::ListChunk &out) override {
		S5V_RETURN_IF_ERROR(inner_.GetChunk(list, index, out));
		dists_.resize(out.rows());
		for (std::size_t r = 0; r < out.rows(); ++r)
			dists_[r] = IndexDistance(metric_, query_.data(), &out.vectors[r * dim()], dim());
		out.vectors = {};
		out.distances = std::span<const float>(dists_.data(), dists_.size() - (lie_ && !dists_.empty() ? 1 : 0));
		return Status::Ok();
	}
	void ReleaseChunk(ivf::ListChunk &chunk) noexcept override { inner_.ReleaseChunk(chunk); }
	int asked = 0;

private:
	ivf::InMemoryInvertedLists &inner_;
	bool lie_;
	Metric metric_ = Metric::L2;
	std::span<const float> query_;
	std::vector<float> dists_;
};

TEST(IvfStream, ListsThatScoreThemselvesGiveTheSameRows) {
	IvfFixture f(16);
	NeverCancel never;
	ScoringLists scoring(*f.lists);
	for (bool bounded : {false, true})
		for (std::size_t qi = 0; qi < 8; ++qi) {
			const float *q = &f.data[qi * 41 * f.dim];
			ivf::IvfSearchParams params{2, 0, true, bounded};
			ivf::IvfStream plain(*f.lists, Metric::L2, never), scored(scoring, Metric::L2, never);
			ASSERT_TRUE(plain.Start(q, params).ok());
			ASSERT_TRUE(scored.Start(q, params).ok());
			auto want = DrainStream(plain), got = DrainStream(scored);
			ASSERT_EQ(got.size(), want.size());
			ASSERT_EQ(got.size(), f.n);
			for (std::size_t i = 0; i < got.size(); ++i) {
				EXPECT_EQ(got[i].row, want[i].row);
				EXPECT_EQ(got[i].distance, want[i].distance);
			}
			EXPECT_EQ(f.lists->chunks_held(), 0u);
		}
	EXPECT_EQ(scoring.asked, 16);
	// A chunk whose distances do not match its rows is corruption, not a wrong answer.
	ScoringLists lying(*f.lists, true);
	std::vector<float> q(f.dim, 0.1f);
	ivf::IvfStream s(lying, Metric::L2, never);
	ASSERT_TRUE(s.Start(q.data(), ivf::IvfSearchParams{f.nlists, 0, true}).ok());
	ScoredRow r;
	bool done;
	EXPECT_EQ(s.Next(r, done).code(), StatusCode::Corrupt);
	EXPECT_EQ(f.lists->chunks_held(), 0u);
}

TEST(IvfStream, BadInput) {
	IvfFixture f(16);
	NeverCancel never;
	ivf::IvfStream s(*f.lists, Metric::L2, never);
	EXPECT_FALSE(s.Start(nullptr, ivf::IvfSearchParams{}).ok());
	std::vector<float> q(f.dim, 0.0f);
	EXPECT_FALSE(s.Start(q.data(), ivf::IvfSearchParams{0, 0, true}).ok());
	ScoredRow r;
	bool done = false;
	EXPECT_TRUE(s.Next(r, done).ok()); // not started: nothing
	EXPECT_TRUE(done);
	ivf::ListChunk chunk;
	EXPECT_FALSE(f.lists->GetChunk(99, 0, chunk).ok());
	EXPECT_FALSE(f.lists->GetChunk(0, 1000, chunk).ok());
	EXPECT_FALSE(f.lists->Add(99, 1, 0, q.data()).ok());
}

} // namespace
} // namespace s5v
