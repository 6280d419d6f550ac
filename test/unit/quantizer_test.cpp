// 8-bit scalar quantizer (src/core/quantizer.h): round trip, the asymmetric distance against the decoded row,
// the documented error bounds, ranking quality of a quantized first pass with exact re-ranking, bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "kmeans.h"
#include "quantizer.h"

namespace {

using s5v::Metric;
using s5v::QuantizedQuery;
using s5v::ScalarQuantizer;
using s5v::StatusCode;

const Metric kAllMetrics[] = {Metric::L2, Metric::InnerProduct, Metric::Cosine, Metric::L1};

void Normalise(std::vector<float> &rows, std::size_t dim) {
	for (std::size_t i = 0; i < rows.size() / dim; i++) {
		double s = 0.0;
		for (std::size_t d = 0; d < dim; d++)
			s += static_cast<double>(rows[i * dim + d]) * rows[i * dim + d];
		float inv = static_cast<float>(1.0 / std::sqrt(s));
		for (std::size_t d = 0; d < dim; d++)
			rows[i * dim + d] *= inv;
	}
}

// n rows around `clusters` Gaussian centres (spread 0.3 by default against centres of spread 1), per-dimension offsets
// and scales so the dimensions' ranges differ.
std::vector<float> Clustered(std::size_t n, std::size_t dim, std::size_t clusters, std::uint32_t seed,
                             float spread = 0.3f) {
	std::mt19937 rng(seed);
	std::normal_distribution<float> g(0.0f, 1.0f);
	std::vector<float> centres(clusters * dim), scale(dim), offset(dim), rows(n * dim);
	for (float &x : centres)
		x = g(rng);
	for (std::size_t d = 0; d < dim; d++) {
		scale[d] = 0.5f + static_cast<float>(d % 5);
		offset[d] = static_cast<float>(d % 3) - 1.0f;
	}
	std::uniform_int_distribution<std::size_t> pick(0, clusters - 1);
	for (std::size_t i = 0; i < n; i++) {
		std::size_t c = pick(rng);
		for (std::size_t d = 0; d < dim; d++)
			rows[i * dim + d] = offset[d] + scale[d] * (centres[c * dim + d] + spread * g(rng));
	}
	return rows;
}

std::vector<std::uint8_t> EncodeAll(const ScalarQuantizer &sq, const std::vector<float> &rows,
                                    std::vector<float> *errors = nullptr) {
	std::size_t dim = sq.dim(), n = rows.size() / dim;
	std::vector<std::uint8_t> codes(n * dim);
	for (std::size_t i = 0; i < n; i++) {
		float e = sq.Encode(&rows[i * dim], &codes[i * dim]);
		if (errors != nullptr)
			errors->push_back(e);
	}
	return codes;
}

TEST(QuantizerTest, RoundTripWithinHalfAStep) {
	const std::size_t dim = 37, n = 500;
	std::vector<float> rows = Clustered(n, dim, 10, 1);
	ScalarQuantizer sq;
	ASSERT_TRUE(sq.Train(rows, n, dim, Metric::L2).ok());
	ASSERT_EQ(sq.dim(), dim);
	std::vector<float> errors;
	std::vector<std::uint8_t> codes = EncodeAll(sq, rows, &errors);
	std::vector<float> back(dim);
	for (std::size_t i = 0; i < n; i++) {
		sq.Decode(&codes[i * dim], back.data());
		double sq_err = 0.0;
		for (std::size_t d = 0; d < dim; d++) {
			float err = std::fabs(back[d] - rows[i * dim + d]);
			EXPECT_LE(err, 0.5f * sq.step()[d] * 1.0001f + 1e-6f) << "row " << i << " dim " << d;
			sq_err += static_cast<double>(err) * err;
		}
		EXPECT_NEAR(errors[i], std::sqrt(sq_err), 1e-4 * (1 + errors[i]));
		EXPECT_LE(errors[i], sq.RowErrorBound() * 1.0001f);
	}
	// The training extremes are exactly representable: code 0 and 255 occur in every dimension.
	for (std::size_t d = 0; d < dim; d++) {
		bool has0 = false, has255 = false;
		for (std::size_t i = 0; i < n; i++) {
			has0 |= codes[i * dim + d] == 0;
			has255 |= codes[i * dim + d] == 255;
		}
		EXPECT_TRUE(has0 && has255) << "dim " << d;
	}
}

// The SIMD distance equals IndexDistance against the decoded row (up to float summation order), at every
// length up to 70 (all tails) and at 128 / 768, for every metric, and Distances with a stride agrees.
TEST(QuantizerTest, DistanceIsThatOfTheDecodedRow) {
	std::vector<std::size_t> dims;
	for (std::size_t d = 1; d <= 70; d++)
		dims.push_back(d);
	dims.push_back(128);
	dims.push_back(768);
	for (Metric metric : kAllMetrics)
		for (std::size_t dim : dims) {
			const std::size_t n = 20;
			std::vector<float> rows = Clustered(n, dim, 3, static_cast<std::uint32_t>(dim));
			if (metric == Metric::Cosine)
				Normalise(rows, dim);
			ScalarQuantizer sq;
			ASSERT_TRUE(sq.Train(rows, n, dim, metric).ok());
			std::vector<std::uint8_t> codes = EncodeAll(sq, rows);
			std::vector<float> query(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(dim));
			for (float &x : query)
				x = x * 0.9f + 0.05f;
			QuantizedQuery q;
			ASSERT_TRUE(sq.Prepare(query, q).ok());
			// Strided layout: each code followed by 5 other bytes.
			const std::size_t stride = dim + 5;
			std::vector<std::uint8_t> packed(n * stride, 0xAB);
			for (std::size_t i = 0; i < n; i++)
				std::copy(&codes[i * dim], &codes[i * dim] + dim, &packed[i * stride]);
			std::vector<float> batch(n);
			sq.Distances(q, packed.data(), n, stride, batch.data());
			std::vector<float> back(dim);
			for (std::size_t i = 0; i < n; i++) {
				sq.Decode(&codes[i * dim], back.data());
				double exact = 0.0, mass = 0.0;
				for (std::size_t d = 0; d < dim; d++) {
					double diff = static_cast<double>(query[d]) - back[d];
					double prod = static_cast<double>(query[d]) * back[d];
					exact += metric == Metric::L2 ? diff * diff : metric == Metric::L1 ? std::fabs(diff) : -prod;
					mass += metric == Metric::L2   ? diff * diff
					        : metric == Metric::L1 ? std::fabs(diff)
					                               : std::fabs(prod);
				}
				// The dot form adds q.lo separately: its rounding is relative to |q.lo| + sum |q step c|.
				double tol = 1e-5 * (mass + std::fabs(q.constant) + 1.0);
				float one = sq.Distance(q, &codes[i * dim]);
				EXPECT_NEAR(one, exact, tol) << "metric " << int(metric) << " dim " << dim << " row " << i;
				EXPECT_EQ(batch[i], one);
			}
		}
}

// Estimated against exact distances to the original rows: inside the documented bounds.
TEST(QuantizerTest, ErrorBoundsHold) {
	const std::size_t dim = 96, n = 2000;
	for (Metric metric : kAllMetrics) {
		std::vector<float> rows = Clustered(n, dim, 20, 5);
		if (metric == Metric::Cosine)
			Normalise(rows, dim);
		ScalarQuantizer sq;
		ASSERT_TRUE(sq.Train(rows, n, dim, metric).ok());
		std::vector<std::uint8_t> codes = EncodeAll(sq, rows);
		double worst_ratio = 0.0;
		for (std::size_t qi = 0; qi < 20; qi++) {
			std::span<const float> query(&rows[(qi * 97) % n * dim], dim);
			QuantizedQuery q;
			ASSERT_TRUE(sq.Prepare(query, q).ok());
			for (std::size_t i = 0; i < n; i += 3) {
				const float *x = &rows[i * dim];
				float est = sq.Distance(q, &codes[i * dim]);
				double exact = 0.0, l2 = 0.0;
				for (std::size_t d = 0; d < dim; d++) {
					double diff = static_cast<double>(query[d]) - x[d];
					l2 += diff * diff;
					exact += metric == Metric::L1 ? std::fabs(diff) : -static_cast<double>(query[d]) * x[d];
				}
				double err, bound;
				if (metric == Metric::L2) {
					err = std::fabs(std::sqrt(std::max(0.0f, est)) - std::sqrt(l2));
					bound = sq.RowErrorBound();
				} else if (metric == Metric::L1) {
					err = std::fabs(est - exact);
					bound = q.l1_error_bound;
				} else {
					err = std::fabs(est - exact);
					bound = q.dot_error_bound;
				}
				EXPECT_LE(err, bound * 1.001 + 1e-4) << "metric " << int(metric) << " row " << i;
				worst_ratio = std::max(worst_ratio, err / bound);
			}
		}
		std::printf("metric %d: worst error / bound = %.3f\n", int(metric), worst_ratio);
	}
}

// A quantized first pass (top 100 by estimated distance) re-ranked exactly finds the true top 10.
TEST(QuantizerTest, RerankedTop100HasRecallAt10) {
	const std::size_t dim = 128, n = 5000, queries = 40, first = 100, k = 10;
	const std::vector<float> data = Clustered(n + queries, dim, 100, 17);
	for (Metric metric : {Metric::L2, Metric::InnerProduct, Metric::Cosine, Metric::L1}) {
		std::vector<float> all = data;
		if (metric == Metric::Cosine)
			Normalise(all, dim);
		std::vector<float> rows(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n * dim));
		ScalarQuantizer sq;
		ASSERT_TRUE(sq.Train(rows, n, dim, metric).ok());
		std::vector<std::uint8_t> codes = EncodeAll(sq, rows);
		std::size_t found = 0, found_without_rerank = 0;
		std::vector<float> est(n);
		for (std::size_t qi = 0; qi < queries; qi++) {
			std::span<const float> query(&all[(n + qi) * dim], dim);
			QuantizedQuery q;
			ASSERT_TRUE(sq.Prepare(query, q).ok());
			sq.Distances(q, codes.data(), n, dim, est.data());
			std::vector<std::pair<float, std::uint32_t>> exact(n), approx(n);
			for (std::size_t i = 0; i < n; i++) {
				exact[i] = {s5v::IndexDistance(metric, query.data(), &rows[i * dim], dim),
				            static_cast<std::uint32_t>(i)};
				approx[i] = {est[i], static_cast<std::uint32_t>(i)};
			}
			std::partial_sort(exact.begin(), exact.begin() + k, exact.end());
			std::partial_sort(approx.begin(), approx.begin() + first, approx.end());
			std::vector<std::pair<float, std::uint32_t>> reranked;
			for (std::size_t t = 0; t < first; t++) {
				std::uint32_t i = approx[t].second;
				reranked.push_back({s5v::IndexDistance(metric, query.data(), &rows[i * dim], dim), i});
			}
			std::sort(reranked.begin(), reranked.end());
			for (std::size_t a = 0; a < k; a++)
				for (std::size_t b = 0; b < k; b++) {
					found += reranked[b].second == exact[a].second;
					found_without_rerank += approx[b].second == exact[a].second;
				}
		}
		double recall = static_cast<double>(found) / (queries * k);
		double raw = static_cast<double>(found_without_rerank) / (queries * k);
		std::printf("metric %d: recall@10 after re-ranking the estimated top 100 = %.4f (estimates alone %.4f)\n",
		            int(metric), recall, raw);
		EXPECT_GE(recall, 0.99) << "metric " << int(metric);
	}
}

TEST(QuantizerTest, ConstantDimensionsAndOutOfRangeRows) {
	const std::size_t dim = 4, n = 50;
	std::vector<float> rows(n * dim);
	for (std::size_t i = 0; i < n; i++) {
		rows[i * dim + 0] = 3.0f; // constant
		rows[i * dim + 1] = static_cast<float>(i);
		rows[i * dim + 2] = -static_cast<float>(i) * 0.5f;
		rows[i * dim + 3] = 1.0f;
	}
	ScalarQuantizer sq;
	ASSERT_TRUE(sq.Train(rows, n, dim, Metric::L2).ok());
	EXPECT_EQ(sq.step()[0], 0.0f);
	std::uint8_t code[dim];
	const float inside[dim] = {3.0f, 10.0f, -5.0f, 1.0f};
	EXPECT_LE(sq.Encode(inside, code), sq.RowErrorBound());
	EXPECT_EQ(code[0], 0);
	std::vector<float> back(dim);
	sq.Decode(code, back.data());
	EXPECT_EQ(back[0], 3.0f);
	// Outside the trained range: clamped, and Encode's error says how far off the code is.
	const float outside[dim] = {5.0f, 100.0f, 10.0f, 1.0f};
	float err = sq.Encode(outside, code);
	EXPECT_EQ(code[1], 255);
	EXPECT_EQ(code[2], 255);
	sq.Decode(code, back.data());
	double want = 0.0;
	for (std::size_t d = 0; d < dim; d++)
		want += (static_cast<double>(outside[d]) - back[d]) * (outside[d] - back[d]);
	EXPECT_NEAR(err, std::sqrt(want), 1e-4);
	EXPECT_GT(err, sq.RowErrorBound());
	// The triangle inequality with the row's own error still bounds the estimate.
	QuantizedQuery q;
	ASSERT_TRUE(sq.Prepare(std::span<const float>(inside, dim), q).ok());
	double exact = 0.0;
	for (std::size_t d = 0; d < dim; d++)
		exact += (static_cast<double>(inside[d]) - outside[d]) * (inside[d] - outside[d]);
	EXPECT_LE(std::fabs(std::sqrt(sq.Distance(q, code)) - std::sqrt(exact)), err + 1e-4);
}

// LowerBound (what the cold scan skips rows by) is never above the exact IndexDistance as the index computes it, for
// every metric, rows inside the trained range and rows far outside it (clamped), at 784 dimensions, and it is tight
// enough to prune: most rows' bounds are above the 10th nearest exact distance.
TEST(QuantizerTest, LowerBoundNeverExceedsTheExactDistance) {
	const std::size_t dim = 784, n = 600, train = 300;
	for (Metric m : kAllMetrics) {
		std::vector<float> rows = Clustered(n, dim, 8, 11);
		if (m == Metric::Cosine)
			Normalise(rows, dim);
		ScalarQuantizer sq;
		ASSERT_TRUE(sq.Train(std::span<const float>(rows.data(), train * dim), train, dim, m).ok());
		// The second half: some rows scaled out of the trained range (clamped coordinates).
		for (std::size_t i = train; i < n; i += 7)
			for (std::size_t d = 0; d < dim; d++)
				rows[i * dim + d] *= 3.0f;
		std::vector<std::uint8_t> codes = EncodeAll(sq, rows);
		std::vector<float> errors(n);
		for (std::size_t i = 0; i < n; i++)
			errors[i] = sq.RowError(&rows[i * dim], &codes[i * dim], m);
		// The append's one-pass form gives the same code and the same error.
		std::vector<std::uint8_t> one(dim);
		for (std::size_t i = 0; i < n; i += 13) {
			EXPECT_EQ(sq.EncodeWithError(&rows[i * dim], one.data(), m), errors[i]) << i;
			EXPECT_TRUE(std::equal(one.begin(), one.end(), codes.begin() + static_cast<std::ptrdiff_t>(i * dim))) << i;
		}
		std::vector<float> est(n);
		std::size_t pruned = 0, queries = 0;
		for (std::size_t qi = 0; qi < 20; qi++) {
			std::vector<float> query(rows.begin() + static_cast<std::ptrdiff_t>(qi * 29 * dim),
			                         rows.begin() + static_cast<std::ptrdiff_t>((qi * 29 + 1) * dim));
			for (std::size_t d = 0; d < dim; d++)
				query[d] += 0.01f * static_cast<float>(d % 7);
			if (m == Metric::Cosine)
				Normalise(query, dim);
			QuantizedQuery q;
			ASSERT_TRUE(sq.Prepare(query, q).ok());
			sq.Distances(q, codes.data(), n, dim, est.data());
			std::vector<float> exact(n);
			for (std::size_t i = 0; i < n; i++) {
				exact[i] = s5v::IndexDistance(m, query.data(), &rows[i * dim], dim);
				float lb = ScalarQuantizer::LowerBound(q, est[i], errors[i]);
				ASSERT_LE(lb, exact[i]) << "metric " << static_cast<int>(m) << " row " << i << " query " << qi;
			}
			std::vector<float> sorted = exact;
			std::nth_element(sorted.begin(), sorted.begin() + 9, sorted.end());
			float tenth = sorted[9];
			for (std::size_t i = 0; i < n; i++)
				pruned += ScalarQuantizer::LowerBound(q, est[i], errors[i]) > tenth ? 1 : 0;
			queries++;
		}
		// Rows whose exact distance the scan never computes for a top-10: most of them.
		EXPECT_GT(static_cast<double>(pruned) / static_cast<double>(queries * n), 0.5) << static_cast<int>(m);
	}
	// Bad values give no bound at all rather than a wrong one.
	QuantizedQuery q;
	q.metric = Metric::L2;
	EXPECT_EQ(ScalarQuantizer::LowerBound(q, std::numeric_limits<float>::quiet_NaN(), 0.0f),
	          -std::numeric_limits<float>::infinity());
}

TEST(QuantizerTest, BadInput) {
	const std::size_t dim = 3;
	std::vector<float> rows = {1, 2, 3, 4, 5, 6};
	ScalarQuantizer sq;
	EXPECT_EQ(sq.Train(rows, 2, 0, Metric::L2).code(), StatusCode::InvalidInput);
	EXPECT_EQ(sq.Train(rows, 3, dim, Metric::L2).code(), StatusCode::InvalidInput) << "span size";
	EXPECT_EQ(sq.Train(rows, 2, dim, static_cast<Metric>(0)).code(), StatusCode::InvalidInput);
	QuantizedQuery q;
	EXPECT_EQ(sq.Prepare(std::span<const float>(rows.data(), dim), q).code(), StatusCode::InvalidInput)
	    << "not trained";
	for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
		std::vector<float> copy = rows;
		copy[4] = bad;
		EXPECT_EQ(sq.Train(copy, 2, dim, Metric::L2).code(), StatusCode::InvalidInput);
	}
	ASSERT_TRUE(sq.Train(rows, 2, dim, Metric::L2).ok());
	EXPECT_EQ(sq.Prepare(std::span<const float>(rows.data(), 2), q).code(), StatusCode::InvalidInput);
	std::vector<float> nan_query = {1, std::numeric_limits<float>::quiet_NaN(), 3};
	EXPECT_EQ(sq.Prepare(nan_query, q).code(), StatusCode::InvalidInput);
	std::vector<float> lo = {0, 0, 0}, neg = {1, -1, 1}, shorter = {1, 1};
	EXPECT_EQ(sq.Load(Metric::L2, lo, neg).code(), StatusCode::InvalidInput);
	EXPECT_EQ(sq.Load(Metric::L2, lo, shorter).code(), StatusCode::InvalidInput);
	std::vector<float> good = {0.5f, 0.25f, 0.0f};
	ASSERT_TRUE(sq.Load(Metric::L2, lo, good).ok());
	QuantizedQuery unprepared;
	std::uint8_t code3[3] = {1, 2, 3};
	EXPECT_TRUE(std::isnan(sq.Distance(unprepared, code3))) << "a query of another quantizer is not read";
	EXPECT_EQ(sq.step()[1], 0.25f);
	EXPECT_NEAR(sq.RowErrorBound(), 0.5 * std::sqrt(0.25 + 0.0625), 1e-7);
}

// ---- RaBitQ-style 1-bit codes ----

using s5v::BinaryQuantizer;
using s5v::BinaryQuery;

TEST(BinaryQuantizerTest, RotationIsOrthogonalAndSeeded) {
	std::mt19937 rng(4);
	std::normal_distribution<float> g(0.0f, 1.0f);
	for (std::size_t dim : {1, 5, 8, 100, 128, 300}) {
		BinaryQuantizer bq;
		ASSERT_TRUE(bq.Init(dim, Metric::L2, 99).ok());
		ASSERT_GE(bq.padded_dim(), dim);
		ASSERT_EQ(bq.padded_dim() & (bq.padded_dim() - 1), 0u);
		std::vector<float> x(dim), y(dim), rx(bq.padded_dim()), ry(bq.padded_dim());
		for (std::size_t d = 0; d < dim; d++) {
			x[d] = g(rng);
			y[d] = g(rng);
		}
		bq.Rotate(x.data(), rx.data());
		bq.Rotate(y.data(), ry.data());
		double dot = 0, rdot = 0, nx = 0, rnx = 0;
		for (std::size_t d = 0; d < dim; d++) {
			dot += static_cast<double>(x[d]) * y[d];
			nx += static_cast<double>(x[d]) * x[d];
		}
		for (std::size_t d = 0; d < bq.padded_dim(); d++) {
			rdot += static_cast<double>(rx[d]) * ry[d];
			rnx += static_cast<double>(rx[d]) * rx[d];
		}
		EXPECT_NEAR(rnx, nx, 1e-4 * nx) << "dim " << dim;
		EXPECT_NEAR(rdot, dot, 1e-4 * nx + 1e-4) << "dim " << dim;
		// Another seed, another rotation; the same seed, the same one.
		BinaryQuantizer other, same;
		ASSERT_TRUE(other.Init(dim, Metric::L2, 100).ok());
		ASSERT_TRUE(same.Init(dim, Metric::L2, 99).ok());
		std::vector<float> ro(bq.padded_dim()), rs(bq.padded_dim());
		other.Rotate(x.data(), ro.data());
		same.Rotate(x.data(), rs.data());
		EXPECT_EQ(rs, rx);
		if (dim > 1) {
			EXPECT_NE(ro, rx);
		}
	}
}

struct BinaryEval {
	double violation_rate = 0.0;    // pairs whose exact distance is outside the error interval
	double recall_top100 = 0.0;     // recall@10 after re-ranking the estimated top 100
	double recall_bound = 0.0;      // recall@10 when re-ranking every row whose lower bound is below the 10th
	double reranked_fraction = 0.0; // rows re-ranked by the bound rule
};

// IVF setting: k-means lists, each row coded against its list's centroid, every list scanned for each query.
BinaryEval EvaluateBinary(Metric metric, std::size_t n, std::size_t dim, std::size_t lists, std::size_t queries,
                          float eps0) {
	BinaryEval ev;
	// Overlapping clusters (spread 0.7): the true neighbours are not simply the query's cluster.
	std::vector<float> all = Clustered(n + queries, dim, 100, 23, 0.7f);
	if (metric == Metric::Cosine)
		Normalise(all, dim);
	std::vector<float> rows(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n * dim));
	s5v::KMeansParams kp;
	kp.k = lists;
	kp.metric = metric;
	s5v::KMeansResult km;
	s5v::NeverCancel never;
	EXPECT_TRUE(s5v::TrainKMeans(rows, n, dim, kp, never, km).ok());
	BinaryQuantizer bq;
	EXPECT_TRUE(bq.Init(dim, metric, 7).ok());
	const std::size_t cs = bq.code_size();
	std::vector<std::uint8_t> codes(n * cs);
	std::vector<float> scratch;
	for (std::size_t i = 0; i < n; i++) {
		std::span<const float> c(&km.centroids[km.assignments[i] * dim], dim);
		EXPECT_TRUE(bq.Encode(std::span<const float>(&rows[i * dim], dim), c, &codes[i * cs], scratch).ok());
	}
	std::size_t violations = 0, pairs = 0, found_top = 0, found_bound = 0, reranked = 0;
	const std::size_t k = 10;
	for (std::size_t qi = 0; qi < queries; qi++) {
		std::span<const float> query(&all[(n + qi) * dim], dim);
		std::vector<float> est(n), low(n), exact(n);
		for (std::size_t list = 0; list < km.k; list++) {
			BinaryQuery bqq;
			EXPECT_TRUE(bq.Prepare(query, std::span<const float>(&km.centroids[list * dim], dim), bqq, eps0).ok());
			for (std::size_t i = 0; i < n; i++)
				if (km.assignments[i] == list)
					bq.Estimate(bqq, &codes[i * cs], 1, cs, &est[i], &low[i]);
		}
		for (std::size_t i = 0; i < n; i++) {
			exact[i] = s5v::IndexDistance(metric, query.data(), &rows[i * dim], dim);
			float half = est[i] - low[i];
			float slack = 1e-4f * (1.0f + std::fabs(exact[i]));
			violations += exact[i] < low[i] - slack || exact[i] > est[i] + half + slack;
			pairs++;
		}
		std::vector<std::uint32_t> by_exact(n), by_est(n), by_low(n);
		for (std::size_t i = 0; i < n; i++)
			by_exact[i] = by_est[i] = by_low[i] = static_cast<std::uint32_t>(i);
		std::sort(by_exact.begin(), by_exact.end(), [&](auto a, auto b) { return exact[a] < exact[b]; });
		std::sort(by_est.begin(), by_est.end(), [&](auto a, auto b) { return est[a] < est[b]; });
		std::sort(by_low.begin(), by_low.end(), [&](auto a, auto b) { return low[a] < low[b]; });
		// Top 100 by estimate, re-ranked.
		std::vector<std::uint32_t> top(by_est.begin(), by_est.begin() + 100);
		std::sort(top.begin(), top.end(), [&](auto a, auto b) { return exact[a] < exact[b]; });
		// Bound rule: rows in lower-bound order until the lower bound passes the 10th exact distance so far.
		std::vector<float> best; // exact distances seen, the k smallest kept sorted
		std::vector<std::uint32_t> best_ids;
		for (std::uint32_t i : by_low) {
			if (best.size() == k && low[i] > best.back())
				break;
			reranked++;
			auto at = std::lower_bound(best.begin(), best.end(), exact[i]);
			std::size_t pos = static_cast<std::size_t>(at - best.begin());
			best.insert(at, exact[i]);
			best_ids.insert(best_ids.begin() + static_cast<std::ptrdiff_t>(pos), i);
			if (best.size() > k) {
				best.pop_back();
				best_ids.pop_back();
			}
		}
		for (std::size_t a = 0; a < k; a++)
			for (std::size_t b = 0; b < k; b++) {
				found_top += top[b] == by_exact[a];
				found_bound += b < best_ids.size() && best_ids[b] == by_exact[a];
			}
	}
	ev.violation_rate = static_cast<double>(violations) / pairs;
	ev.recall_top100 = static_cast<double>(found_top) / (queries * k);
	ev.recall_bound = static_cast<double>(found_bound) / (queries * k);
	ev.reranked_fraction = static_cast<double>(reranked) / (queries * n);
	return ev;
}

// The error interval holds as documented (eps0 = 3: about 0.3% of pairs outside; 1.9: about 5%), and re-ranking
// every row whose lower bound is below the current 10th exact distance finds the true top 10.
TEST(BinaryQuantizerTest, ErrorBoundAndRecall) {
	for (Metric metric : {Metric::L2, Metric::InnerProduct, Metric::Cosine}) {
		for (float eps0 : {3.0f, 1.9f}) {
			BinaryEval ev = EvaluateBinary(metric, 4000, 128, 16, 20, eps0);
			std::printf("metric %d eps0 %.1f: bound violated for %.3f%% of pairs; recall@10 re-ranking the "
			            "estimated top 100 = %.4f; re-ranking by lower bound = %.4f (%.2f%% of rows re-ranked)\n",
			            int(metric), eps0, 100 * ev.violation_rate, ev.recall_top100, ev.recall_bound,
			            100 * ev.reranked_fraction);
			if (eps0 == 3.0f) {
				EXPECT_LE(ev.violation_rate, 0.006) << "metric " << int(metric);
				EXPECT_GE(ev.recall_bound, 0.99) << "metric " << int(metric);
				EXPECT_GE(ev.recall_top100, 0.99) << "metric " << int(metric);
				EXPECT_LE(ev.reranked_fraction, 0.25) << "the bound must prune most rows";
			} else {
				EXPECT_LE(ev.violation_rate, 0.08) << "metric " << int(metric);
				EXPECT_GE(ev.violation_rate, 0.02) << "1.9 standard deviations: a few percent outside";
			}
		}
	}
}

TEST(BinaryQuantizerTest, RowAtItsCentroidAndBadInput) {
	const std::size_t dim = 12;
	BinaryQuantizer bq;
	ASSERT_TRUE(bq.Init(dim, Metric::L2, 1).ok());
	EXPECT_EQ(bq.code_size(), bq.padded_dim() / 8 + 12);
	std::vector<float> c(dim), q(dim);
	for (std::size_t d = 0; d < dim; d++) {
		c[d] = static_cast<float>(d);
		q[d] = static_cast<float>(d) + 0.5f;
	}
	std::vector<std::uint8_t> code(bq.code_size());
	std::vector<float> scratch;
	ASSERT_TRUE(bq.Encode(c, c, code.data(), scratch).ok()); // o = 0
	BinaryQuery bqq;
	ASSERT_TRUE(bq.Prepare(q, c, bqq).ok());
	float est, low;
	bq.Estimate(bqq, code.data(), 1, code.size(), &est, &low);
	EXPECT_NEAR(est, 0.25f * dim, 1e-4);
	EXPECT_NEAR(low, est, 1e-6) << "no error when the row is its centroid";

	BinaryQuery empty_query;
	bq.Estimate(empty_query, code.data(), 1, code.size(), &est, &low);
	EXPECT_TRUE(std::isnan(est) && std::isnan(low)) << "a query of another quantizer is not read";
	BinaryQuantizer bad;
	EXPECT_EQ(bad.Init(dim, Metric::L1, 1).code(), StatusCode::InvalidInput);
	EXPECT_EQ(bad.Init(0, Metric::L2, 1).code(), StatusCode::InvalidInput);
	EXPECT_EQ(bad.Prepare(q, {}, bqq).code(), StatusCode::InvalidInput) << "not initialised";
	std::vector<float> nan_row = c;
	nan_row[3] = std::numeric_limits<float>::quiet_NaN();
	EXPECT_EQ(bq.Encode(nan_row, {}, code.data(), scratch).code(), StatusCode::InvalidInput);
	EXPECT_EQ(bq.Prepare(nan_row, {}, bqq).code(), StatusCode::InvalidInput);
	std::vector<float> shorter(dim - 1);
	EXPECT_EQ(bq.Encode(shorter, {}, code.data(), scratch).code(), StatusCode::InvalidInput);
	EXPECT_EQ(bq.Prepare(q, shorter, bqq).code(), StatusCode::InvalidInput);
}

} // namespace
