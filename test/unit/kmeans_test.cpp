// k-means (src/core/kmeans.h): quality against a reference built from the true clusters, every metric,
// determinism, degenerate inputs (fewer rows than lists, duplicates, one point, zero rows), the size cap,
// cancellation, bad input, and the probe step.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kmeans.h"

namespace {

using s5v::KMeansParams;
using s5v::KMeansResult;
using s5v::Metric;
using s5v::StatusCode;

const Metric kAllMetrics[] = {Metric::L2, Metric::InnerProduct, Metric::Cosine, Metric::L1};

struct Clustered {
	std::size_t n = 0, dim = 0, k = 0;
	std::vector<float> rows;
	std::vector<std::uint32_t> label; // the true cluster of each row
};

// k well-separated clusters: centres at distance ~100 * sqrt(dim / 3) from each other, spread 1. For the spherical
// metrics the centres are directions (unit vectors times 100) and the spread is small against that, so the
// clusters are separated in angle too. Cluster sizes differ (size of cluster c proportional to c + 1).
Clustered MakeClusters(std::size_t k, std::size_t dim, std::size_t per_cluster, std::uint32_t seed) {
	Clustered c;
	c.dim = dim;
	c.k = k;
	std::mt19937 rng(seed);
	std::uniform_real_distribution<float> centre(-100.0f, 100.0f);
	std::normal_distribution<float> noise(0.0f, 1.0f);
	std::vector<float> centres(k * dim);
	for (float &x : centres)
		x = centre(rng);
	for (std::size_t j = 0; j < k; j++) {
		std::size_t count = per_cluster * (j + 1) / ((k + 1) / 2);
		count = std::max<std::size_t>(count, 4);
		for (std::size_t t = 0; t < count; t++) {
			for (std::size_t d = 0; d < dim; d++)
				c.rows.push_back(centres[j * dim + d] + noise(rng));
			c.label.push_back(static_cast<std::uint32_t>(j));
		}
	}
	c.n = c.label.size();
	return c;
}

double Norm(const float *v, std::size_t dim) {
	double s = 0.0;
	for (std::size_t d = 0; d < dim; d++)
		s += static_cast<double>(v[d]) * v[d];
	return std::sqrt(s);
}

// The best centroids for a given partition, computed naively: mean (L2), normalised mean of the rows (inner
// product) or of the normalised rows (cosine), lower median per dimension (L1).
std::vector<float> ReferenceCentroids(const std::vector<float> &rows, std::size_t dim,
                                      const std::vector<std::uint32_t> &label, std::size_t k, Metric metric) {
	std::vector<float> out(k * dim, 0.0f);
	for (std::size_t j = 0; j < k; j++) {
		std::vector<std::size_t> members;
		for (std::size_t i = 0; i < label.size(); i++)
			if (label[i] == j)
				members.push_back(i);
		for (std::size_t d = 0; d < dim; d++) {
			if (metric == Metric::L1) {
				std::vector<float> v;
				for (std::size_t i : members)
					v.push_back(rows[i * dim + d]);
				std::sort(v.begin(), v.end());
				out[j * dim + d] = v[(v.size() - 1) / 2];
				continue;
			}
			double s = 0.0;
			for (std::size_t i : members) {
				double scale = metric == Metric::Cosine ? 1.0 / Norm(&rows[i * dim], dim) : 1.0;
				s += rows[i * dim + d] * scale;
			}
			out[j * dim + d] = static_cast<float>(metric == Metric::L2 ? s / members.size() : s);
		}
		if (metric == Metric::InnerProduct || metric == Metric::Cosine) {
			double norm = Norm(&out[j * dim], dim);
			for (std::size_t d = 0; d < dim; d++)
				out[j * dim + d] = static_cast<float>(out[j * dim + d] / norm);
		}
	}
	return out;
}

// The objective as the header defines it, in double from scratch (no kernels).
double Objective(const std::vector<float> &rows, std::size_t dim, const std::vector<float> &centroids,
                 const std::vector<std::uint32_t> &assign, Metric metric) {
	double total = 0.0;
	for (std::size_t i = 0; i < assign.size(); i++) {
		const float *x = &rows[i * dim];
		const float *c = &centroids[assign[i] * dim];
		double v = 0.0;
		for (std::size_t d = 0; d < dim; d++) {
			double diff = static_cast<double>(x[d]) - c[d];
			switch (metric) {
			case Metric::L2:
				v += diff * diff;
				break;
			case Metric::L1:
				v += std::fabs(diff);
				break;
			case Metric::InnerProduct:
			case Metric::Cosine:
				v -= static_cast<double>(x[d]) * c[d];
				break;
			}
		}
		if (metric == Metric::Cosine)
			v /= Norm(x, dim);
		total += v;
	}
	return total;
}

// The invariants every successful result must satisfy.
void CheckResult(const KMeansResult &r, std::size_t n, std::size_t dim, Metric metric) {
	ASSERT_GE(r.k, 1u);
	ASSERT_EQ(r.centroids.size(), r.k * dim);
	ASSERT_EQ(r.assignments.size(), n);
	ASSERT_EQ(r.list_sizes.size(), r.k);
	for (float x : r.centroids)
		ASSERT_TRUE(std::isfinite(x));
	std::vector<std::uint32_t> sizes(r.k, 0);
	for (std::uint32_t a : r.assignments) {
		ASSERT_LT(a, r.k);
		sizes[a]++;
	}
	EXPECT_EQ(sizes, r.list_sizes);
	if (metric == Metric::InnerProduct || metric == Metric::Cosine) {
		for (std::size_t j = 0; j < r.k; j++)
			EXPECT_NEAR(Norm(&r.centroids[j * dim], dim), 1.0, 1e-5) << "centroid " << j;
	}
	EXPECT_TRUE(std::isfinite(r.objective));
}

s5v::Status Train(const std::vector<float> &rows, std::size_t n, std::size_t dim, const KMeansParams &p,
                  KMeansResult &out) {
	s5v::NeverCancel never;
	return s5v::TrainKMeans(rows, n, dim, p, never, out);
}

// Objective within 1% of the one the true clusters give (their optimal centroids), for every metric and for
// several seeds; the final assignment is the nearest centroid for every row (up to float ties).
TEST(KMeansTest, WellSeparatedClustersReachTheReferenceObjective) {
	for (Metric metric : kAllMetrics) {
		Clustered c = MakeClusters(12, 24, 150, 7);
		std::vector<float> ref = ReferenceCentroids(c.rows, c.dim, c.label, c.k, metric);
		double ref_objective = Objective(c.rows, c.dim, ref, c.label, metric);
		for (std::uint64_t seed = 1; seed <= 4; seed++) {
			KMeansParams p;
			p.k = c.k;
			p.metric = metric;
			p.seed = seed;
			p.max_iterations = 25;
			KMeansResult r;
			ASSERT_TRUE(Train(c.rows, c.n, c.dim, p, r).ok());
			CheckResult(r, c.n, c.dim, metric);
			ASSERT_EQ(r.k, c.k);
			double got = Objective(c.rows, c.dim, r.centroids, r.assignments, metric);
			EXPECT_NEAR(r.objective, got, 1e-4 * std::fabs(got) + 1e-3) << "reported objective";
			// The spherical objectives are -sum of dots; "within 1%" is then measured from the ideal, where every
			// centroid points exactly along its rows (-sum |x| for inner product, -n for cosine).
			double ideal = 0.0;
			if (metric == Metric::InnerProduct)
				for (std::size_t i = 0; i < c.n; i++)
					ideal -= Norm(&c.rows[i * c.dim], c.dim);
			else if (metric == Metric::Cosine)
				ideal = -static_cast<double>(c.n);
			EXPECT_LE(got - ideal, (ref_objective - ideal) * 1.01)
			    << "metric " << int(metric) << " seed " << seed << " ref " << ref_objective;
			std::vector<std::uint32_t> nearest(c.n);
			s5v::NeverCancel never;
			ASSERT_TRUE(s5v::AssignToNearest(c.rows, c.n, c.dim, r.centroids, r.k, metric, never, nearest, {}).ok());
			std::size_t differ = 0;
			for (std::size_t i = 0; i < c.n; i++)
				differ += nearest[i] != r.assignments[i];
			EXPECT_EQ(differ, 0u) << "metric " << int(metric);
			// Every true cluster is one list.
			for (std::size_t i = 1; i < c.n; i++)
				if (c.label[i] == c.label[i - 1]) {
					ASSERT_EQ(r.assignments[i], r.assignments[i - 1]);
				}
		}
	}
}

// Overlapping clusters (no clean answer): Lloyd never makes the objective worse than the seeding alone gave,
// and more iterations do not hurt.
TEST(KMeansTest, IterationsImproveTheObjective) {
	std::mt19937 rng(3);
	std::normal_distribution<float> g(0.0f, 1.0f);
	const std::size_t n = 1500, dim = 16;
	std::vector<float> rows(n * dim);
	for (float &x : rows)
		x = g(rng);
	for (Metric metric : kAllMetrics) {
		double previous = std::numeric_limits<double>::infinity();
		for (int iters : {0, 2, 10, 30}) {
			KMeansParams p;
			p.k = 20;
			p.metric = metric;
			p.seed = 9;
			p.max_iterations = iters;
			KMeansResult r;
			ASSERT_TRUE(Train(rows, n, dim, p, r).ok());
			CheckResult(r, n, dim, metric);
			EXPECT_LE(r.iterations, iters);
			EXPECT_LE(r.objective, previous + 1e-6 * std::fabs(previous)) << "metric " << int(metric);
			previous = r.objective;
		}
	}
}

TEST(KMeansTest, DeterministicForASeed) {
	Clustered c = MakeClusters(10, 32, 100, 11);
	for (Metric metric : kAllMetrics) {
		KMeansParams p;
		p.k = 16; // more lists than clusters: the split of a cluster depends on the seed
		p.metric = metric;
		p.seed = 42;
		KMeansResult a, b, other;
		ASSERT_TRUE(Train(c.rows, c.n, c.dim, p, a).ok());
		ASSERT_TRUE(Train(c.rows, c.n, c.dim, p, b).ok());
		ASSERT_EQ(a.centroids.size(), b.centroids.size());
		EXPECT_EQ(0, std::memcmp(a.centroids.data(), b.centroids.data(), a.centroids.size() * sizeof(float)));
		EXPECT_EQ(a.assignments, b.assignments);
		EXPECT_EQ(a.objective, b.objective);
		EXPECT_EQ(a.iterations, b.iterations);
		p.seed = 43;
		ASSERT_TRUE(Train(c.rows, c.n, c.dim, p, other).ok());
		CheckResult(other, c.n, c.dim, metric);
		EXPECT_NE(a.centroids, other.centroids) << "the seed must matter, metric " << int(metric);
	}
}

TEST(KMeansTest, FewerRowsThanListsGivesOneListPerRow) {
	std::mt19937 rng(5);
	std::uniform_real_distribution<float> u(-1.0f, 1.0f);
	const std::size_t n = 7, dim = 5;
	std::vector<float> rows(n * dim);
	for (float &x : rows)
		x = u(rng);
	for (Metric metric : kAllMetrics) {
		KMeansParams p;
		p.k = 20;
		p.metric = metric;
		KMeansResult r;
		ASSERT_TRUE(Train(rows, n, dim, p, r).ok());
		CheckResult(r, n, dim, metric);
		EXPECT_EQ(r.k, n) << "k is reduced to the number of rows";
		for (std::uint32_t s : r.list_sizes)
			EXPECT_EQ(s, 1u);
		if (metric == Metric::L2 || metric == Metric::L1) {
			EXPECT_EQ(r.objective, 0.0);
		}
	}
}

// 3 distinct points, each repeated many times, 10 lists asked for: 3 lists, exact centroids, no NaN, no loop.
TEST(KMeansTest, DuplicatesGiveOneListPerDistinctPoint) {
	const std::size_t dim = 8;
	const float points[3][dim] = {{1, 2, 3, 4, 5, 6, 7, 8}, {-1, 0, 0, 2, 0, 0, 1, 0}, {0, 0, 0, 0, 0, 0, 0, 9}};
	std::vector<float> rows;
	std::size_t n = 0;
	for (int rep = 0; rep < 60; rep++)
		for (int j = 0; j < 3; j++)
			if (j != 1 || rep % 3 == 0) { // unequal multiplicities
				rows.insert(rows.end(), points[j], points[j] + dim);
				n++;
			}
	for (Metric metric : kAllMetrics) {
		for (std::uint64_t seed = 0; seed < 5; seed++) {
			KMeansParams p;
			p.k = 10;
			p.metric = metric;
			p.seed = seed;
			p.seed_sample = 20; // the sample may miss a point: seeding then looks at every row
			KMeansResult r;
			ASSERT_TRUE(Train(rows, n, dim, p, r).ok());
			CheckResult(r, n, dim, metric);
			EXPECT_EQ(r.k, 3u) << "metric " << int(metric) << " seed " << seed;
			for (std::uint32_t s : r.list_sizes)
				EXPECT_GT(s, 0u);
			// Rows that are equal share a list.
			for (std::size_t i = 0; i < n; i++)
				for (std::size_t t = 0; t < i; t++)
					if (std::equal(&rows[i * dim], &rows[i * dim] + dim, &rows[t * dim])) {
						ASSERT_EQ(r.assignments[i], r.assignments[t]);
					}
			if (metric == Metric::L2 || metric == Metric::L1) {
				EXPECT_EQ(r.objective, 0.0);
			}
		}
	}
}

TEST(KMeansTest, OneDistinctPoint) {
	const std::size_t n = 50, dim = 6;
	const float point[dim] = {0.5f, -2.0f, 3.0f, 0.0f, 1.0f, 4.0f};
	std::vector<float> rows;
	for (std::size_t i = 0; i < n; i++)
		rows.insert(rows.end(), point, point + dim);
	double norm = Norm(point, dim);
	for (Metric metric : kAllMetrics) {
		KMeansParams p;
		p.k = 4;
		p.metric = metric;
		KMeansResult r;
		ASSERT_TRUE(Train(rows, n, dim, p, r).ok());
		CheckResult(r, n, dim, metric);
		ASSERT_EQ(r.k, 1u);
		EXPECT_EQ(r.list_sizes[0], n);
		for (std::size_t d = 0; d < dim; d++) {
			float want =
			    (metric == Metric::L2 || metric == Metric::L1) ? point[d] : static_cast<float>(point[d] / norm);
			EXPECT_NEAR(r.centroids[d], want, 1e-6);
		}
	}
}

// Spherical metrics: zero rows have no direction; they are never seeds and never give a NaN centroid.
TEST(KMeansTest, ZeroRowsUnderSphericalMetrics) {
	const std::size_t dim = 4;
	for (Metric metric : {Metric::InnerProduct, Metric::Cosine}) {
		std::vector<float> zeros(10 * dim, 0.0f);
		KMeansParams p;
		p.k = 3;
		p.metric = metric;
		KMeansResult r;
		ASSERT_TRUE(Train(zeros, 10, dim, p, r).ok());
		CheckResult(r, 10, dim, metric);
		EXPECT_EQ(r.k, 1u);

		std::vector<float> mixed = zeros;
		const float a[dim] = {1, 0, 0, 0}, b[dim] = {0, 3, 0, 0}, b2[dim] = {0, 6, 0, 0};
		mixed.insert(mixed.end(), a, a + dim);
		mixed.insert(mixed.end(), b, b + dim);
		mixed.insert(mixed.end(), b2, b2 + dim); // same direction as b
		ASSERT_TRUE(Train(mixed, 13, dim, p, r).ok());
		CheckResult(r, 13, dim, metric);
		EXPECT_EQ(r.k, 2u) << "two distinct directions";
		EXPECT_EQ(r.assignments[11], r.assignments[12]);
		EXPECT_NE(r.assignments[10], r.assignments[11]);
	}
}

// Given starting centroids with a duplicate and one far from every row, two lists are empty after the first
// assignment: both are re-seeded (the farthest row of the largest list), and the three clusters come out.
TEST(KMeansTest, EmptyListsAreReseeded) {
	std::mt19937 rng(31);
	std::normal_distribution<float> g(0.0f, 1.0f);
	const std::size_t dim = 8, per = 100, n = 3 * per;
	std::vector<float> rows;
	for (std::size_t j = 0; j < 3; j++)
		for (std::size_t t = 0; t < per; t++)
			for (std::size_t d = 0; d < dim; d++)
				rows.push_back(g(rng) + (d == j ? 50.0f : 0.0f));
	std::vector<float> init(3 * dim, 0.0f);
	init[0] = 50.0f;
	init[dim] = 50.0f; // a duplicate of the first
	for (std::size_t d = 0; d < dim; d++)
		init[2 * dim + d] = -1000.0f; // far from (and, in angle, opposite to) every row
	for (Metric metric : kAllMetrics) {
		KMeansParams p;
		p.k = 3;
		p.metric = metric;
		p.initial_centroids = init;
		p.max_iterations = 20;
		KMeansResult r;
		ASSERT_TRUE(Train(rows, n, dim, p, r).ok());
		CheckResult(r, n, dim, metric);
		ASSERT_EQ(r.k, 3u);
		for (std::uint32_t s : r.list_sizes)
			EXPECT_EQ(s, per) << "metric " << int(metric);
		for (std::size_t i = 1; i < n; i++) {
			if (i % per != 0) {
				EXPECT_EQ(r.assignments[i], r.assignments[i - 1]);
			}
		}
		// Zero-iteration run: the starting centroids (normalised for the spherical metrics) come back as given.
		p.max_iterations = 0;
		ASSERT_TRUE(Train(rows, n, dim, p, r).ok());
		EXPECT_EQ(r.list_sizes[2], 0u) << "without an update nothing is re-seeded";
	}
	KMeansParams p;
	p.k = 3;
	std::vector<float> wrong(2 * dim, 1.0f);
	p.initial_centroids = wrong;
	KMeansResult r;
	EXPECT_EQ(Train(rows, n, dim, p, r).code(), StatusCode::InvalidInput);
	std::vector<float> nan_init = init;
	nan_init[3] = std::numeric_limits<float>::quiet_NaN();
	p.initial_centroids = nan_init;
	EXPECT_EQ(Train(rows, n, dim, p, r).code(), StatusCode::InvalidInput);
	std::vector<float> zero_init = init;
	std::fill(zero_init.begin(), zero_init.begin() + dim, 0.0f);
	p.initial_centroids = zero_init;
	p.metric = Metric::Cosine;
	EXPECT_EQ(Train(rows, n, dim, p, r).code(), StatusCode::InvalidInput) << "a zero centroid has no direction";
}

// Many lists for few rows (k > n / 8: the centroid gaps are not computed and only the per-row bounds prune):
// still every row in its nearest list and no list empty.
TEST(KMeansTest, ManyListsForFewRows) {
	std::mt19937 rng(12);
	std::normal_distribution<float> g(0.0f, 1.0f);
	const std::size_t n = 400, dim = 10;
	std::vector<float> rows(n * dim);
	for (float &x : rows)
		x = g(rng);
	for (Metric metric : kAllMetrics) {
		KMeansParams p;
		p.k = 100;
		p.metric = metric;
		p.max_iterations = 30;
		KMeansResult r;
		ASSERT_TRUE(Train(rows, n, dim, p, r).ok());
		CheckResult(r, n, dim, metric);
		ASSERT_EQ(r.k, 100u);
		for (std::uint32_t s : r.list_sizes)
			EXPECT_GT(s, 0u) << "metric " << int(metric);
		std::vector<std::uint32_t> nearest(n);
		s5v::NeverCancel never;
		ASSERT_TRUE(s5v::AssignToNearest(rows, n, dim, r.centroids, r.k, metric, never, nearest, {}).ok());
		std::size_t differ = 0;
		for (std::size_t i = 0; i < n; i++)
			differ += nearest[i] != r.assignments[i];
		// An L1 median can sit at equal distance from two lists' rows; allow the rare float tie.
		EXPECT_LE(differ, metric == Metric::L1 ? 2u : 0u) << "metric " << int(metric);
	}
}

// L1 trains k-medians: with one list the centroid is the per-dimension lower median.
TEST(KMeansTest, L1CentroidIsTheMedian) {
	const std::size_t n = 101, dim = 7;
	std::mt19937 rng(8);
	std::exponential_distribution<float> skewed(1.0f); // mean and median differ
	std::vector<float> rows(n * dim);
	for (float &x : rows)
		x = skewed(rng);
	KMeansParams p;
	p.k = 1;
	p.metric = Metric::L1;
	KMeansResult r;
	ASSERT_TRUE(Train(rows, n, dim, p, r).ok());
	std::vector<std::uint32_t> one(n, 0);
	std::vector<float> ref = ReferenceCentroids(rows, dim, one, 1, Metric::L1);
	EXPECT_EQ(r.centroids, ref);
}

TEST(KMeansTest, SizeCapIsHonoured) {
	// One big cluster and three small ones; a cap well below the big cluster's size.
	std::mt19937 rng(21);
	std::normal_distribution<float> g(0.0f, 1.0f);
	const std::size_t dim = 8;
	const std::size_t sizes[4] = {700, 100, 100, 100};
	std::vector<float> rows;
	for (int j = 0; j < 4; j++)
		for (std::size_t t = 0; t < sizes[j]; t++)
			for (std::size_t d = 0; d < dim; d++)
				rows.push_back(g(rng) + (d == static_cast<std::size_t>(j) ? 50.0f : 0.0f));
	const std::size_t n = 1000;
	for (Metric metric : kAllMetrics) {
		KMeansParams p;
		p.k = 4;
		p.metric = metric;
		KMeansResult free_run;
		ASSERT_TRUE(Train(rows, n, dim, p, free_run).ok());
		EXPECT_GE(*std::max_element(free_run.list_sizes.begin(), free_run.list_sizes.end()), 690u)
		    << "without a cap the big cluster is one list";
		p.max_list_size = 260;
		KMeansResult r;
		ASSERT_TRUE(Train(rows, n, dim, p, r).ok());
		CheckResult(r, n, dim, metric);
		ASSERT_EQ(r.k, 4u);
		for (std::uint32_t s : r.list_sizes)
			EXPECT_LE(s, 260u) << "metric " << int(metric);
		// Rows kept in a list are at least as near to its centroid as... every row of the small clusters stays.
		EXPECT_EQ(r.centroids, free_run.centroids) << "the cap moves rows, not centroids";
		EXPECT_EQ(Objective(rows, dim, r.centroids, r.assignments, metric) >=
		              Objective(rows, dim, free_run.centroids, free_run.assignments, metric) - 1e-3,
		          true);
		p.max_list_size = 249; // 4 * 249 < 1000
		EXPECT_EQ(Train(rows, n, dim, p, r).code(), StatusCode::InvalidInput);
		// Feasible for the lists asked for, not for the lists the rows allow (one distinct point): refused
		// after training.
		std::vector<float> same(n * dim, 1.0f);
		p.max_list_size = 250;
		EXPECT_EQ(Train(same, n, dim, p, r).code(), StatusCode::InvalidInput);
	}
}

// A token that fires after a number of polls: every phase (seeding, assignment, update) is reached.
class CancelAfter final : public s5v::CancelToken {
public:
	explicit CancelAfter(int polls) : left_(polls) {}
	bool cancelled() const noexcept override { return left_.fetch_sub(1) <= 0; }
	int polls_made(int start) const { return start - left_.load(); }

private:
	mutable std::atomic<int> left_;
};

TEST(KMeansTest, CancelReturnsCancelled) {
	Clustered c = MakeClusters(10, 16, 200, 4);
	KMeansParams p;
	p.k = 10;
	p.max_iterations = 20;
	// Count the polls of a full run, then cancel at points spread over it.
	CancelAfter counter(1 << 30);
	KMeansResult r;
	ASSERT_TRUE(s5v::TrainKMeans(c.rows, c.n, c.dim, p, counter, r).ok());
	int total = counter.polls_made(1 << 30);
	ASSERT_GT(total, 20);
	for (int at : {0, 1, total / 4, total / 2, total - 2}) {
		CancelAfter cancel(at);
		EXPECT_EQ(s5v::TrainKMeans(c.rows, c.n, c.dim, p, cancel, r).code(), StatusCode::Cancelled) << "at " << at;
	}
	CancelAfter now(0);
	std::vector<std::uint32_t> assign(c.n);
	EXPECT_EQ(s5v::AssignToNearest(c.rows, c.n, c.dim, r.centroids, 1, Metric::L2, now, assign, {}).code(),
	          StatusCode::InvalidInput)
	    << "centroid count mismatch is checked before anything";
}

TEST(KMeansTest, BadInput) {
	const std::size_t dim = 4;
	std::vector<float> rows(40 * dim, 1.0f);
	for (std::size_t i = 0; i < rows.size(); i++)
		rows[i] = static_cast<float>(i % 7);
	KMeansParams p;
	p.k = 3;
	KMeansResult r;
	for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
	                  -std::numeric_limits<float>::infinity()}) {
		std::vector<float> copy = rows;
		copy[17] = bad;
		s5v::Status st = Train(copy, 40, dim, p, r);
		EXPECT_EQ(st.code(), StatusCode::InvalidInput);
		EXPECT_NE(st.message().find("row 4"), std::string::npos) << st.message();
	}
	std::vector<float> huge = rows;
	huge[0] = 1e20f;
	EXPECT_EQ(Train(huge, 40, dim, p, r).code(), StatusCode::InvalidInput);
	EXPECT_EQ(Train(rows, 0, dim, p, r).code(), StatusCode::InvalidInput);
	EXPECT_EQ(Train(rows, 40, 0, p, r).code(), StatusCode::InvalidInput);
	EXPECT_EQ(Train(rows, 39, dim, p, r).code(), StatusCode::InvalidInput) << "span size must be n * dim";
	KMeansParams q = p;
	q.k = 0;
	EXPECT_EQ(Train(rows, 40, dim, q, r).code(), StatusCode::InvalidInput);
	q = p;
	q.metric = static_cast<Metric>(9);
	EXPECT_EQ(Train(rows, 40, dim, q, r).code(), StatusCode::InvalidInput);
	q = p;
	q.max_iterations = -1;
	EXPECT_EQ(Train(rows, 40, dim, q, r).code(), StatusCode::InvalidInput);
	q = p;
	q.max_bytes = s5v::KMeansMemoryBytes(40, dim, 3, Metric::L2) - 1;
	EXPECT_EQ(Train(rows, 40, dim, q, r).code(), StatusCode::LimitExceeded);
	q.max_bytes += 1;
	EXPECT_TRUE(Train(rows, 40, dim, q, r).ok());

	std::vector<std::uint32_t> assign(40);
	std::vector<float> nan_rows = rows;
	nan_rows[9] = std::numeric_limits<float>::quiet_NaN();
	s5v::NeverCancel never;
	EXPECT_EQ(s5v::AssignToNearest(nan_rows, 40, dim, r.centroids, r.k, Metric::L2, never, assign, {}).code(),
	          StatusCode::InvalidInput);
	std::vector<s5v::ListDistance> probes;
	std::vector<float> query(dim, std::numeric_limits<float>::quiet_NaN());
	EXPECT_EQ(s5v::NearestCentroids(query, r.centroids, r.k, Metric::L2, 2, probes).code(), StatusCode::InvalidInput);
}

TEST(KMeansTest, MemoryEstimateIsLinear) {
	std::size_t base = s5v::KMeansMemoryBytes(1000, 128, 100, Metric::L2);
	EXPECT_GE(base, 100u * 128 * 4 + 1000u * 4); // at least centroids and assignments
	EXPECT_LT(s5v::KMeansMemoryBytes(2000, 128, 100, Metric::L2), 2 * base);
	EXPECT_EQ(s5v::KMeansMemoryBytes(SIZE_MAX / 2, SIZE_MAX / 2, 10, Metric::L2), SIZE_MAX);
}

// The probe step against a brute-force sort, for every metric.
void NearestCentroidsMatchBruteForce(std::size_t dim) {
	std::mt19937 rng(2);
	std::normal_distribution<float> g(0.0f, 1.0f);
	const std::size_t k = 50;
	std::vector<float> centroids(k * dim), query(dim);
	for (float &x : centroids)
		x = g(rng);
	for (float &x : query)
		x = g(rng);
	std::copy(&centroids[3 * dim], &centroids[4 * dim], &centroids[7 * dim]); // a tie: 3 before 7
	for (Metric metric : kAllMetrics) {
		std::vector<std::pair<float, std::uint32_t>> brute;
		for (std::size_t j = 0; j < k; j++)
			brute.push_back(
			    {s5v::IndexDistance(metric, query.data(), &centroids[j * dim], dim), static_cast<std::uint32_t>(j)});
		std::sort(brute.begin(), brute.end());
		std::vector<s5v::ListDistance> out;
		for (std::size_t nprobe : {std::size_t{1}, std::size_t{10}, k, k + 5}) {
			ASSERT_TRUE(s5v::NearestCentroids(query, centroids, k, metric, nprobe, out).ok());
			ASSERT_EQ(out.size(), std::min(nprobe, k));
			// The probe computes eight centroids at a time (another summation order than IndexDistance's kernel):
			// equal up to float rounding, and in the same order (no near-ties in these data).
			for (std::size_t t = 0; t < out.size(); t++) {
				EXPECT_EQ(out[t].list, brute[t].second) << "metric " << int(metric) << " rank " << t;
				EXPECT_NEAR(out[t].distance, brute[t].first, 1e-5f * (1.0f + std::fabs(brute[t].first)));
			}
		}
		ASSERT_TRUE(s5v::NearestCentroids(query, centroids, k, metric, 0, out).ok());
		EXPECT_TRUE(out.empty());
	}
	std::vector<s5v::ListDistance> out;
	EXPECT_EQ(s5v::NearestCentroids(query, centroids, k - 1, Metric::L2, 3, out).code(), StatusCode::InvalidInput);
}

TEST(KMeansTest, NearestCentroidsMatchesBruteForce) {
	for (std::size_t dim : {std::size_t{3}, std::size_t{20}, std::size_t{128}})
		NearestCentroidsMatchBruteForce(dim);
}

TEST(KMeansTest, AssignToNearestGivesDistances) {
	Clustered c = MakeClusters(5, 10, 40, 13);
	KMeansParams p;
	p.k = 5;
	KMeansResult r;
	ASSERT_TRUE(Train(c.rows, c.n, c.dim, p, r).ok());
	std::vector<std::uint32_t> assign(c.n);
	std::vector<float> dist(c.n);
	s5v::NeverCancel never;
	ASSERT_TRUE(s5v::AssignToNearest(c.rows, c.n, c.dim, r.centroids, r.k, Metric::L2, never, assign, dist).ok());
	for (std::size_t i = 0; i < c.n; i++) {
		float best = std::numeric_limits<float>::infinity();
		for (std::size_t j = 0; j < r.k; j++)
			best = std::min(best, s5v::L2SquaredDistance(&c.rows[i * c.dim], &r.centroids[j * c.dim], c.dim));
		EXPECT_NEAR(dist[i], best, 1e-5f * (1.0f + best));
		EXPECT_EQ(assign[i], r.assignments[i]);
	}
	std::vector<float> short_dist(3);
	EXPECT_EQ(s5v::AssignToNearest(c.rows, c.n, c.dim, r.centroids, r.k, Metric::L2, never, assign, short_dist).code(),
	          StatusCode::InvalidInput);
}

} // namespace
