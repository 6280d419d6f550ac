// IvfStream over lists that hand out lower bounds (a quantized first pass, src/core/inverted_lists.h): the output
// must be what exact distances give (order, every row once, rows gone since not handed out), strict and relaxed,
// and a top-10 must resolve few bounds. The lists are real ScalarQuantizer codes of clustered rows; the fake
// part is only where the rows live (memory instead of pages).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "inverted_lists.h"
#include "quantizer.h"

namespace {

using namespace s5v;

class NeverCancel final : public CancelToken {
public:
	bool cancelled() const noexcept override { return false; }
};

// Lists whose rows are coded: a chunk (one per list) carries the exact distance for rows that may enter the nearest
// exact_rows seen so far and the code's lower bound for the others, as PageColdLists does.
class CodedLists final : public ivf::InvertedLists {
public:
	CodedLists(std::size_t dim, std::size_t nlists, std::size_t n, Metric metric, std::uint32_t seed)
	    : dim_(dim), metric_(metric), centroids_(nlists * dim), rows_(nlists) {
		std::mt19937 rng(seed);
		std::normal_distribution<float> g(0.0f, 1.0f);
		for (float &c : centroids_)
			c = 2.0f * g(rng);
		std::vector<float> all(n * dim);
		for (std::size_t i = 0; i < n; i++) {
			std::size_t c = i % nlists;
			for (std::size_t d = 0; d < dim; d++)
				all[i * dim + d] = centroids_[c * dim + d] + g(rng);
		}
		if (!sq_.Train(all, n, dim, metric).ok())
			std::abort();
		for (std::size_t i = 0; i < n; i++) {
			Row r;
			r.id = i;
			r.vec.assign(all.begin() + static_cast<std::ptrdiff_t>(i * dim),
			             all.begin() + static_cast<std::ptrdiff_t>((i + 1) * dim));
			if (i % 13 == 0) // out of the trained range: clamped codes
				for (float &x : r.vec)
					x *= 2.5f;
			r.code.resize(dim);
			(void)sq_.Encode(r.vec.data(), r.code.data());
			r.error = sq_.RowError(r.vec.data(), r.code.data(), metric);
			rows_[NearestList(r.vec.data())].push_back(r);
		}
	}

	std::size_t list_count() const override { return rows_.size(); }
	std::size_t dim() const override { return dim_; }
	Status Centroids(std::span<const float> &out) override {
		out = centroids_;
		return Status::Ok();
	}
	bool ScoresQuery(Metric metric, std::span<const float> query) override {
		query_.assign(query.begin(), query.end());
		best_.clear();
		return metric == metric_ && sq_.Prepare(query, qq_).ok();
	}
	void SetExactRows(std::size_t rows) override { exact_rows_ = rows; }
	Status ChunkCount(ivf::ListId list, std::size_t &out) override {
		out = rows_[list].empty() ? 0 : 1;
		return Status::Ok();
	}
	Status GetChunk(ivf::ListId list, std::size_t, ivf::ListChunk &out) override {
		const std::vector<Row> &rs = rows_[list];
		ids_.clear();
		ages_.assign(rs.size(), 0);
		live_.assign(rs.size(), 1);
		dists_.clear();
		exact_.clear();
		locs_.clear();
		for (std::size_t r = 0; r < rs.size(); r++) {
			float est = sq_.Distance(qq_, rs[r].code.data());
			float lb = ScalarQuantizer::LowerBound(qq_, est, rs[r].error);
			ids_.push_back(rs[r].id);
			locs_.push_back((static_cast<std::uint64_t>(list) << 32) | r);
			// A removed row models one removed after its page was read: handed out as a bound, gone at resolve.
			if (!removed_.count(rs[r].id) && (best_.size() < exact_rows_ || lb < best_.back())) {
				float d = IndexDistance(metric_, query_.data(), rs[r].vec.data(), dim_);
				best_.insert(std::upper_bound(best_.begin(), best_.end(), d), d);
				if (best_.size() > exact_rows_)
					best_.pop_back();
				dists_.push_back(d);
				exact_.push_back(1);
			} else {
				dists_.push_back(lb);
				exact_.push_back(0);
				lazies_++;
			}
		}
		out.list = list;
		out.ids = ids_;
		out.ages = ages_;
		out.live = live_;
		out.distances = dists_;
		out.exact = exact_;
		out.locs = locs_;
		out.token = 1;
		return Status::Ok();
	}
	void ReleaseChunk(ivf::ListChunk &chunk) noexcept override { chunk = ivf::ListChunk{}; }
	Status ExactDistance(ivf::ListId list, RowId id, std::uint64_t loc, float &out, bool &found) override {
		const Row &r = rows_[loc >> 32][loc & 0xffffffffu];
		if (list != (loc >> 32) || r.id != id)
			return Status::Corrupt("wrong location");
		found = !removed_.count(id);
		out = IndexDistance(metric_, query_.data(), r.vec.data(), dim_);
		return Status::Ok();
	}

	// Every row of the lists (or of the first `within` lists by centroid distance), exact, nearest first.
	std::vector<ScoredRow> Exact(const float *q, std::size_t within) const {
		std::vector<std::pair<float, std::size_t>> by;
		for (std::size_t l = 0; l < rows_.size(); l++)
			by.push_back({IndexDistance(metric_, q, &centroids_[l * dim_], dim_), l});
		std::sort(by.begin(), by.end());
		std::vector<ScoredRow> out;
		for (std::size_t k = 0; k < within && k < by.size(); k++)
			for (const Row &r : rows_[by[k].second])
				if (!removed_.count(r.id))
					out.push_back({IndexDistance(metric_, q, r.vec.data(), dim_), r.id});
		std::sort(out.begin(), out.end(), [](const ScoredRow &a, const ScoredRow &b) {
			return a.distance < b.distance || (a.distance == b.distance && a.row < b.row);
		});
		return out;
	}

	std::set<RowId> removed_;
	std::size_t lazies_ = 0;

private:
	struct Row {
		RowId id;
		std::vector<float> vec;
		std::vector<std::uint8_t> code;
		float error;
	};
	std::size_t NearestList(const float *v) const {
		std::size_t best = 0;
		for (std::size_t l = 1; l < rows_.size(); l++)
			if (IndexDistance(metric_, v, &centroids_[l * dim_], dim_) <
			    IndexDistance(metric_, v, &centroids_[best * dim_], dim_))
				best = l;
		return best;
	}
	std::size_t dim_;
	Metric metric_;
	std::vector<float> centroids_;
	std::vector<std::vector<Row>> rows_;
	ScalarQuantizer sq_;
	QuantizedQuery qq_;
	std::vector<float> query_, best_;
	std::size_t exact_rows_ = 10;
	std::vector<RowId> ids_;
	std::vector<std::int64_t> ages_;
	std::vector<std::uint8_t> live_, exact_;
	std::vector<float> dists_;
	std::vector<std::uint64_t> locs_;
};

std::vector<ScoredRow> Drain(CandidateStream &s, std::size_t limit = ~std::size_t{0}) {
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

void ExpectSame(const std::vector<ScoredRow> &got, const std::vector<ScoredRow> &want) {
	ASSERT_EQ(got.size(), want.size());
	for (std::size_t i = 0; i < got.size(); i++) {
		EXPECT_EQ(got[i].row, want[i].row) << "rank " << i;
		EXPECT_EQ(got[i].distance, want[i].distance) << "rank " << i;
	}
}

TEST(IvfLazy, FullSweepIsTheExactOrderWithEveryRowOnce) {
	const Metric metrics[] = {Metric::L2, Metric::InnerProduct, Metric::L1};
	for (Metric m : metrics)
		for (bool bounded : {false, true}) {
			CodedLists lists(64, 8, 800, m, 5);
			lists.removed_ = {3, 50, 51, 400};
			NeverCancel never;
			std::vector<float> q(64, 0.3f);
			ivf::IvfStream s(lists, m, never);
			ivf::IvfSearchParams p;
			p.probes = 8; // every list in the first round: one global order either way
			p.bounded = bounded;
			ASSERT_TRUE(s.Start(q.data(), p).ok());
			std::vector<ScoredRow> got = Drain(s);
			ExpectSame(got, lists.Exact(q.data(), 8));
			EXPECT_GT(lists.lazies_, 400u) << "most rows handed out as bounds";
			EXPECT_EQ(s.LowerBound(), kNoMoreRows);
		}
}

TEST(IvfLazy, RelaxedRoundsStayExactWithinTheirLists) {
	CodedLists lists(32, 10, 1000, Metric::L2, 9);
	NeverCancel never;
	std::vector<float> q(32, -0.2f);
	ivf::IvfStream s(lists, Metric::L2, never);
	ivf::IvfSearchParams p;
	p.probes = 3;
	ASSERT_TRUE(s.Start(q.data(), p).ok());
	// The first round: exactly the rows of the 3 nearest lists, in exact order; then the stream widens.
	std::vector<ScoredRow> want = lists.Exact(q.data(), 3);
	std::vector<ScoredRow> got = Drain(s, want.size());
	ExpectSame(got, want);
	EXPECT_EQ(Drain(s).size(), 1000u - want.size());
}

TEST(IvfLazy, TopTenResolvesFewBoundsAndBoundedOrderIsGlobal) {
	CodedLists lists(128, 16, 3000, Metric::L2, 21);
	NeverCancel never;
	std::vector<float> q(128, 0.1f);
	{
		ivf::IvfStream s(lists, Metric::L2, never);
		ivf::IvfSearchParams p;
		p.probes = 4;
		ASSERT_TRUE(s.Start(q.data(), p).ok());
		std::vector<ScoredRow> got = Drain(s, 10);
		std::vector<ScoredRow> want = lists.Exact(q.data(), 4);
		ExpectSame(got, std::vector<ScoredRow>(want.begin(), want.begin() + 10));
		EXPECT_LE(s.resolves(), 5u) << "the nearest 10 were exact while their pages were read";
	}
	{
		// Bounded (strict): the global exact order, however many lists that takes.
		ivf::IvfStream s(lists, Metric::L2, never);
		ivf::IvfSearchParams p;
		p.probes = 2;
		p.bounded = true;
		ASSERT_TRUE(s.Start(q.data(), p).ok());
		std::vector<ScoredRow> all = lists.Exact(q.data(), 16);
		std::vector<ScoredRow> got = Drain(s, 50);
		ExpectSame(got, std::vector<ScoredRow>(all.begin(), all.begin() + 50));
		float lb = s.LowerBound();
		EXPECT_LE(lb, all[50].distance);
	}
}

} // namespace
