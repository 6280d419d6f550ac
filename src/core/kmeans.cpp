// k-means++ seeding, Lloyd iterations with Hamerly's bounds, the size cap, and the IVF probe step.
//
// Hamerly (2010): per row an upper bound u on the distance to its centroid and a lower bound l on the distance
// to every other centroid; a row whose u is below max(l, half the distance from its centroid to the nearest
// other centroid) cannot change list and costs nothing. After centroids move by p[j], u grows by p[own] and l
// shrinks by the largest p of the other centroids. The bounds need a true metric: sqrt of squared L2 (raw rows
// against unit centroids for the spherical metrics, which ranks like -dot) or L1 itself.
#include "kmeans.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <new>
#include <string>
#include <string_view>

#include <immintrin.h>

namespace s5v {
namespace {

constexpr std::size_t kCancelEvery = 256;
constexpr std::size_t kMaxK = std::size_t{1} << 20;
constexpr int kMaxIterations = 1000;
constexpr int kSeedTrials = 3; // candidates per greedy k-means++ step
// Distances come from float sums (relative error ~1e-6 at typical dimensions): a row is skipped only when its
// bound clears the threshold by this margin, so rounding does not keep a row in the wrong list.
constexpr float kBoundSlack = 1.0f - 1e-5f;
// Seeding weights for the spherical metrics are 2 - 2cos, which rounding keeps from being exactly 0 for the
// same direction; below this a row counts as already covered by a seed.
constexpr float kSphericalSameDirection = 1e-6f;

// xoshiro256** (Blackman, Vigna), seeded through splitmix64: small, fast, and ours, so results do not depend
// on the standard library's distributions.
class Rng {
public:
	explicit Rng(std::uint64_t seed) {
		for (auto &s : s_) {
			seed += 0x9e3779b97f4a7c15ULL;
			std::uint64_t z = seed;
			z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
			z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
			s = z ^ (z >> 31);
		}
	}
	std::uint64_t Next() {
		std::uint64_t result = Rotl(s_[1] * 5, 7) * 9;
		std::uint64_t t = s_[1] << 17;
		s_[2] ^= s_[0];
		s_[3] ^= s_[1];
		s_[1] ^= s_[2];
		s_[0] ^= s_[3];
		s_[2] ^= t;
		s_[3] = Rotl(s_[3], 45);
		return result;
	}
	// Uniform in [0, 1).
	double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
	// Uniform in [0, bound), bound > 0 (multiply-shift; the bias is below 2^-32 for bounds below 2^32).
	std::uint64_t Below(std::uint64_t bound) {
		return static_cast<std::uint64_t>((static_cast<unsigned __int128>(Next()) * bound) >> 64);
	}

private:
	static std::uint64_t Rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
	std::uint64_t s_[4];
};

bool IsSpherical(Metric m) {
	return m == Metric::InnerProduct || m == Metric::Cosine;
}

bool ValidMetric(Metric m) {
	return m == Metric::L2 || m == Metric::InnerProduct || m == Metric::Cosine || m == Metric::L1;
}

// a * b + c with saturation at SIZE_MAX.
std::size_t SatMulAdd(std::size_t a, std::size_t b, std::size_t c) {
	std::size_t prod;
	if (__builtin_mul_overflow(a, b, &prod))
		return SIZE_MAX;
	std::size_t sum;
	if (__builtin_add_overflow(prod, c, &sum))
		return SIZE_MAX;
	return sum;
}

// Every value finite and the squared norm small enough that no squared distance between two rows overflows.
Status CheckRows(const float *rows, std::size_t n, std::size_t dim) {
	constexpr double kMaxSquaredNorm = static_cast<double>(FLT_MAX) / 4.0;
	for (std::size_t i = 0; i < n; i++) {
		const float *x = rows + i * dim;
		double sq = 0.0;
		for (std::size_t d = 0; d < dim; d++) {
			if (!std::isfinite(x[d]))
				return Status::InvalidInput("row " + std::to_string(i) + " has a NaN or infinite value");
			sq += static_cast<double>(x[d]) * x[d];
		}
		if (sq > kMaxSquaredNorm)
			return Status::InvalidInput("row " + std::to_string(i) + " has a norm too large for float distances");
	}
	return Status::Ok();
}

// Scale `v` to unit norm in place; false (v unchanged) when its norm is 0.
bool NormaliseDouble(const double *sum, float *out, std::size_t dim) {
	double sq = 0.0;
	for (std::size_t d = 0; d < dim; d++)
		sq += sum[d] * sum[d];
	if (!(sq > 0.0) || !std::isfinite(sq))
		return false;
	double inv = 1.0 / std::sqrt(sq);
	for (std::size_t d = 0; d < dim; d++)
		out[d] = static_cast<float>(sum[d] * inv);
	return true;
}

// One row against a block of centroids at once (the row is loaded once for the block), AVX2 + FMA. The kernel
// set's per-pair functions load both vectors for every pair and reduce each sum on its own; in the loops over
// all centroids below that made up most of the training time. Compiled for AVX2 through a target attribute
// (this function only, internal linkage, no inline library code instantiated for AVX2), called only when the
// active kernel set is avx2 or avx512, i.e. the CPU has AVX2 and FMA.
enum class Op { L2Squared, L1, Dot };

// Eight independent accumulators: enough to cover the FMA latency (4-5 cycles, 2 per cycle); four were
// latency-bound at about the speed of the per-pair kernel.
constexpr std::size_t kBlock = 8;

template <Op op>
[[gnu::target("avx2,fma")]] void BlockDistancesAvx2(const float *x, const float *c, std::size_t dim,
                                                    float *out) noexcept {
	__m256 acc[kBlock];
#pragma GCC unroll 8
	for (std::size_t j = 0; j < kBlock; j++)
		acc[j] = _mm256_setzero_ps();
	const __m256 sign = _mm256_set1_ps(-0.0f);
	std::size_t d = 0;
	for (; d + 8 <= dim; d += 8) {
		__m256 xv = _mm256_loadu_ps(x + d);
#pragma GCC unroll 8
		for (std::size_t j = 0; j < kBlock; j++) {
			__m256 v = _mm256_loadu_ps(c + j * dim + d);
			if constexpr (op == Op::Dot) {
				acc[j] = _mm256_fmadd_ps(xv, v, acc[j]);
			} else {
				v = _mm256_sub_ps(xv, v);
				if constexpr (op == Op::L1)
					acc[j] = _mm256_add_ps(acc[j], _mm256_andnot_ps(sign, v));
				else
					acc[j] = _mm256_fmadd_ps(v, v, acc[j]);
			}
		}
	}
	// Horizontal sums four accumulators at a time: lane j of each result is the sum of acc[j].
	for (std::size_t q = 0; q < kBlock; q += 4) {
		__m256 h = _mm256_hadd_ps(_mm256_hadd_ps(acc[q], acc[q + 1]), _mm256_hadd_ps(acc[q + 2], acc[q + 3]));
		_mm_storeu_ps(out + q, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
	}
	for (; d < dim; d++)
		for (std::size_t j = 0; j < kBlock; j++) {
			float cj = c[j * dim + d];
			float t = op == Op::Dot ? x[d] * cj : x[d] - cj;
			out[j] += op == Op::Dot ? t : op == Op::L1 ? __builtin_fabsf(t) : t * t;
		}
}

bool UseAvx2Blocks() noexcept {
	static const bool use = [] {
		std::string_view name = ActiveKernels().name;
		return name == "avx2" || name == "avx512";
	}();
	return use;
}

// Calls visit(j, distance) for every centroid j in order, distance by `op` (squared L2, L1 or dot).
template <class Visit>
void ForEachCentroid(Op op, const KernelSet &ks, const float *x, const float *centroids, std::size_t k, std::size_t dim,
                     Visit &&visit) {
	std::size_t j = 0;
	if (UseAvx2Blocks()) {
		float block[kBlock];
		for (; j + kBlock <= k; j += kBlock) {
			const float *c = centroids + j * dim;
			switch (op) {
			case Op::L2Squared:
				BlockDistancesAvx2<Op::L2Squared>(x, c, dim, block);
				break;
			case Op::L1:
				BlockDistancesAvx2<Op::L1>(x, c, dim, block);
				break;
			case Op::Dot:
				BlockDistancesAvx2<Op::Dot>(x, c, dim, block);
				break;
			}
			for (std::size_t t = 0; t < kBlock; t++)
				visit(j + t, block[t]);
		}
	}
	for (; j < k; j++) {
		const float *c = centroids + j * dim;
		visit(j, op == Op::L2Squared ? ks.l2_squared(x, c, dim)
		         : op == Op::L1      ? ks.l1(x, c, dim)
		                             : ks.inner_product(x, c, dim));
	}
}

class Trainer {
public:
	Trainer(const float *rows, std::size_t n, std::size_t dim, const KMeansParams &p, const CancelToken &cancel,
	        KMeansResult &out)
	    : rows_(rows), n_(n), dim_(dim), p_(p), metric_(p.metric), ks_(ActiveKernels()), cancel_(cancel), out_(out),
	      rng_(p.seed) {}

	Status Run() {
		const std::size_t k_max = std::min(p_.k, n_);
		out_ = KMeansResult{};
		out_.centroids.reserve(k_max * dim_);
		out_.assignments.assign(n_, 0);
		upper_.assign(n_, 0.0f);
		lower_.assign(n_, 0.0f);
		if (IsSpherical(metric_)) {
			inv_norm_.resize(n_);
			for (std::size_t i = 0; i < n_; i++) {
				double sq = 0.0;
				const float *x = Row(i);
				for (std::size_t d = 0; d < dim_; d++)
					sq += static_cast<double>(x[d]) * x[d];
				inv_norm_[i] = sq > 0.0 ? static_cast<float>(1.0 / std::sqrt(sq)) : 0.0f;
			}
		}
		S5V_RETURN_IF_ERROR(Seed(k_max));
		k_ = out_.centroids.size() / dim_;
		counts_.assign(k_, 0);
		move_.assign(k_, 0.0f);
		half_gap_.assign(k_, 0.0f);
		sums_.assign(k_ * dim_, 0.0);
		old_.resize(k_ * dim_);

		S5V_RETURN_IF_ERROR(FullAssign());
		for (int it = 0; it < p_.max_iterations; it++) {
			if (cancel_.cancelled())
				return Status::Cancelled();
			S5V_RETURN_IF_ERROR(Update());
			out_.iterations = it + 1;
			float max_move = *std::max_element(move_.begin(), move_.end());
			if (max_move == 0.0f) {
				out_.converged = true;
				break;
			}
			UpdateBounds();
			std::size_t changed = 0;
			S5V_RETURN_IF_ERROR(BoundedAssign(changed));
			if (changed == 0) {
				out_.converged = true;
				break;
			}
		}
		S5V_RETURN_IF_ERROR(ExactDistances());
		if (p_.max_list_size > 0)
			S5V_RETURN_IF_ERROR(ApplyCap());
		Finish();
		return Status::Ok();
	}

private:
	const float *Row(std::size_t i) const { return rows_ + i * dim_; }
	float *Centroid(std::size_t j) { return out_.centroids.data() + j * dim_; }

	// The metric the bounds live in (see the file comment), before the square root (monotonic, so the nearest
	// centroids can be found on it and only the winners pay for a sqrt).
	float RawDistance(const float *x, const float *c) const {
		return metric_ == Metric::L1 ? ks_.l1(x, c, dim_) : std::max(ks_.l2_squared(x, c, dim_), 0.0f);
	}
	float FromRaw(float raw) const { return metric_ == Metric::L1 ? raw : std::sqrt(raw); }
	float BoundDistance(const float *x, const float *c) const { return FromRaw(RawDistance(x, c)); }

	// k-means++ weight of row i against centroid c: squared L2, L1 (k-medians), or 2 - 2cos (spherical).
	float SeedWeight(std::size_t i, const float *c) const {
		const float *x = Row(i);
		switch (metric_) {
		case Metric::L2:
			return ks_.l2_squared(x, c, dim_);
		case Metric::L1:
			return ks_.l1(x, c, dim_);
		case Metric::InnerProduct:
		case Metric::Cosine:
			break;
		}
		float w = 2.0f - 2.0f * ks_.inner_product(x, c, dim_) * inv_norm_[i];
		return w < kSphericalSameDirection ? 0.0f : w;
	}

	// The centroid a seed row gives: the row itself, normalised for the spherical metrics.
	void SeedVector(std::size_t row, float *out) const {
		const float *x = Row(row);
		std::copy(x, x + dim_, out);
		if (IsSpherical(metric_))
			for (std::size_t d = 0; d < dim_; d++)
				out[d] *= inv_norm_[row];
	}

	void AddSeed(std::size_t row) {
		std::size_t at = out_.centroids.size();
		out_.centroids.resize(at + dim_);
		SeedVector(row, out_.centroids.data() + at);
	}

	// next[t] = min(weight[t], weight against c) over `rows`; total = their sum.
	Status FoldInto(std::span<const std::uint32_t> rows, const std::vector<float> &weight, const float *c,
	                std::vector<float> &next, double &total) {
		total = 0.0;
		for (std::size_t t = 0; t < rows.size(); t++) {
			if (t % kCancelEvery == 0 && cancel_.cancelled())
				return Status::Cancelled();
			next[t] = weight[t] > 0.0f ? std::min(weight[t], SeedWeight(rows[t], c)) : 0.0f;
			total += next[t];
		}
		return Status::Ok();
	}

	// A row drawn with probability proportional to its weight (rows.size() when all weights are 0).
	std::size_t Draw(const std::vector<float> &weight, double total) {
		double target = rng_.Uniform() * total;
		std::size_t chosen = weight.size();
		double acc = 0.0;
		for (std::size_t t = 0; t < weight.size(); t++) {
			if (weight[t] <= 0.0f)
				continue;
			chosen = t;
			acc += weight[t];
			if (acc > target)
				break;
		}
		return chosen;
	}

	// Greedy k-means++ over `rows` until k_max centroids exist or every row is covered (weight 0): each step
	// draws kSeedTrials candidates by weight and keeps the one that lowers the total weight most. Plain
	// k-means++ (one candidate) misses a well-separated cluster a few percent of the time per step; Lloyd
	// iterations cannot repair that.
	Status SeedFrom(std::span<const std::uint32_t> rows, std::size_t k_max) {
		std::vector<float> weight(rows.size(), std::numeric_limits<float>::infinity());
		if (IsSpherical(metric_))
			for (std::size_t t = 0; t < rows.size(); t++)
				if (inv_norm_[rows[t]] == 0.0f)
					weight[t] = 0.0f; // a zero row has no direction
		if (out_.centroids.empty()) {
			std::size_t valid = 0;
			for (float w : weight)
				valid += w > 0.0f;
			if (valid == 0)
				return Status::Ok();
			std::uint64_t pick = rng_.Below(valid);
			for (std::size_t t = 0; t < rows.size(); t++)
				if (weight[t] > 0.0f && pick-- == 0) {
					AddSeed(rows[t]);
					break;
				}
		}
		// Weights against the centroids that exist already (the first one, or those from an earlier sample).
		double total = 0.0;
		for (std::size_t j = 0; j < out_.centroids.size() / dim_; j++)
			S5V_RETURN_IF_ERROR(FoldInto(rows, weight, out_.centroids.data() + j * dim_, weight, total));
		// The candidates of a step are drawn first and scored in one pass over the rows (the sample is read
		// once per step, not once per candidate: it is usually larger than the cache).
		std::vector<float> next(rows.size() * kSeedTrials), vecs(dim_ * kSeedTrials);
		while (out_.centroids.size() / dim_ < k_max && total > 0.0) {
			std::size_t cand[kSeedTrials];
			int trials = 0;
			for (; trials < kSeedTrials; trials++) {
				cand[trials] = Draw(weight, total);
				if (cand[trials] == rows.size())
					break;
				SeedVector(rows[cand[trials]], vecs.data() + trials * dim_);
			}
			if (trials == 0)
				break;
			double cand_total[kSeedTrials] = {};
			for (std::size_t t = 0; t < rows.size(); t++) {
				if (t % kCancelEvery == 0 && cancel_.cancelled())
					return Status::Cancelled();
				for (int c = 0; c < trials; c++) {
					float w =
					    weight[t] > 0.0f ? std::min(weight[t], SeedWeight(rows[t], vecs.data() + c * dim_)) : 0.0f;
					next[c * rows.size() + t] = w;
					cand_total[c] += w;
				}
			}
			int best = 0;
			for (int c = 1; c < trials; c++)
				if (cand_total[c] < cand_total[best])
					best = c;
			AddSeed(rows[cand[best]]);
			std::copy(next.begin() + static_cast<std::ptrdiff_t>(best * rows.size()),
			          next.begin() + static_cast<std::ptrdiff_t>((best + 1) * rows.size()), weight.begin());
			total = cand_total[best];
		}
		return Status::Ok();
	}

	Status Seed(std::size_t k_max) {
		if (!p_.initial_centroids.empty()) {
			out_.centroids.assign(p_.initial_centroids.begin(), p_.initial_centroids.end());
			if (IsSpherical(metric_))
				for (std::size_t j = 0; j < k_max; j++) {
					float *c = Centroid(j);
					std::vector<double> wide(c, c + dim_);
					if (!NormaliseDouble(wide.data(), c, dim_))
						return Status::InvalidInput("k-means: initial centroid " + std::to_string(j) + " is zero");
				}
			return Status::Ok();
		}
		std::size_t m = p_.seed_sample != 0 ? p_.seed_sample : std::max<std::size_t>(16 * k_max, 2048);
		m = std::min(m, n_);
		std::vector<std::uint32_t> sample(n_);
		for (std::size_t i = 0; i < n_; i++)
			sample[i] = static_cast<std::uint32_t>(i);
		if (m < n_) {
			for (std::size_t i = 0; i < m; i++) // partial Fisher-Yates: the first m are a uniform sample
				std::swap(sample[i], sample[i + rng_.Below(n_ - i)]);
			sample.resize(m);
			std::sort(sample.begin(), sample.end()); // memory order
		}
		S5V_RETURN_IF_ERROR(SeedFrom(sample, k_max));
		if (out_.centroids.size() / dim_ < k_max && m < n_) {
			// The sample ran out of distinct points: look at every row.
			sample.resize(n_);
			for (std::size_t i = 0; i < n_; i++)
				sample[i] = static_cast<std::uint32_t>(i);
			S5V_RETURN_IF_ERROR(SeedFrom(sample, k_max));
		}
		if (out_.centroids.empty()) {
			// Only zero rows under a spherical metric: one unit centroid, any direction.
			out_.centroids.assign(dim_, 0.0f);
			out_.centroids[0] = 1.0f;
		}
		return Status::Ok();
	}

	// Nearest and second-nearest centroid of row i over all centroids (ties: lower index).
	void Nearest2(std::size_t i, std::uint32_t &best, float &d1, float &d2) {
		const float *x = Row(i);
		best = 0;
		d1 = std::numeric_limits<float>::infinity();
		d2 = std::numeric_limits<float>::infinity();
		ForEachCentroid(metric_ == Metric::L1 ? Op::L1 : Op::L2Squared, ks_, x, out_.centroids.data(), k_, dim_,
		                [&](std::size_t j, float d) {
			                d = std::max(d, 0.0f);
			                if (d < d1) {
				                d2 = d1;
				                d1 = d;
				                best = static_cast<std::uint32_t>(j);
			                } else if (d < d2) {
				                d2 = d;
			                }
		                });
		d1 = FromRaw(d1);
		d2 = FromRaw(d2);
	}

	Status FullAssign() {
		for (std::size_t i = 0; i < n_; i++) {
			if (i % kCancelEvery == 0 && cancel_.cancelled())
				return Status::Cancelled();
			Nearest2(i, out_.assignments[i], upper_[i], lower_[i]);
		}
		return Status::Ok();
	}

	// Half the distance from each centroid to its nearest other centroid. It costs k^2 / 2 distances, so with
	// many lists for few rows (k > n / 8) the gaps are left at 0 and only the per-row lower bounds prune.
	Status HalfGaps() {
		if (k_ > n_ / 8) {
			std::fill(half_gap_.begin(), half_gap_.end(), 0.0f);
			return Status::Ok();
		}
		std::fill(half_gap_.begin(), half_gap_.end(), std::numeric_limits<float>::infinity());
		for (std::size_t a = 0; a < k_; a++) {
			if (a % 64 == 0 && cancel_.cancelled())
				return Status::Cancelled();
			for (std::size_t b = a + 1; b < k_; b++) {
				float d = 0.5f * BoundDistance(Centroid(a), Centroid(b));
				half_gap_[a] = std::min(half_gap_[a], d);
				half_gap_[b] = std::min(half_gap_[b], d);
			}
		}
		return Status::Ok();
	}

	Status BoundedAssign(std::size_t &changed) {
		S5V_RETURN_IF_ERROR(HalfGaps());
		changed = 0;
		for (std::size_t i = 0; i < n_; i++) {
			if (i % kCancelEvery == 0 && cancel_.cancelled())
				return Status::Cancelled();
			std::uint32_t own = out_.assignments[i];
			float bound = std::max(half_gap_[own], lower_[i]) * kBoundSlack;
			if (upper_[i] <= bound)
				continue;
			upper_[i] = BoundDistance(Row(i), Centroid(own));
			if (upper_[i] <= bound)
				continue;
			std::uint32_t best;
			Nearest2(i, best, upper_[i], lower_[i]);
			if (best != own) {
				out_.assignments[i] = best;
				changed++;
			}
		}
		return Status::Ok();
	}

	void UpdateBounds() {
		std::size_t far = 0;
		float max1 = 0.0f, max2 = 0.0f;
		for (std::size_t j = 0; j < k_; j++) {
			if (move_[j] > max1) {
				max2 = max1;
				max1 = move_[j];
				far = j;
			} else if (move_[j] > max2) {
				max2 = move_[j];
			}
		}
		for (std::size_t i = 0; i < n_; i++) {
			std::uint32_t own = out_.assignments[i];
			upper_[i] += move_[own];
			lower_[i] = std::max(0.0f, lower_[i] - (own == far ? max2 : max1));
		}
	}

	void CountLists() {
		std::fill(counts_.begin(), counts_.end(), 0);
		for (std::uint32_t a : out_.assignments)
			counts_[a]++;
	}

	// New centroids from the assignments (old ones kept in old_), movements in move_, empty lists re-seeded.
	Status Update() {
		std::copy(out_.centroids.begin(), out_.centroids.end(), old_.begin());
		CountLists();
		if (metric_ == Metric::L1) {
			S5V_RETURN_IF_ERROR(Medians());
		} else {
			std::fill(sums_.begin(), sums_.end(), 0.0);
			for (std::size_t i = 0; i < n_; i++) {
				if (i % (kCancelEvery * 16) == 0 && cancel_.cancelled())
					return Status::Cancelled();
				const float *x = Row(i);
				double *s = sums_.data() + out_.assignments[i] * dim_;
				double scale = metric_ == Metric::Cosine ? inv_norm_[i] : 1.0;
				for (std::size_t d = 0; d < dim_; d++)
					s[d] += x[d] * scale;
			}
			for (std::size_t j = 0; j < k_; j++) {
				if (counts_[j] == 0)
					continue; // re-seeded below
				const double *s = sums_.data() + j * dim_;
				float *c = Centroid(j);
				if (IsSpherical(metric_)) {
					NormaliseDouble(s, c, dim_); // a zero sum (opposite rows) keeps the old centroid
				} else {
					double inv = 1.0 / counts_[j];
					for (std::size_t d = 0; d < dim_; d++)
						c[d] = static_cast<float>(s[d] * inv);
				}
			}
		}
		S5V_RETURN_IF_ERROR(ReseedEmpty());
		for (std::size_t j = 0; j < k_; j++)
			move_[j] = BoundDistance(old_.data() + j * dim_, Centroid(j));
		return Status::Ok();
	}

	// Per-dimension lower median of each list's rows (k-medians for L1).
	Status Medians() {
		std::vector<std::size_t> start(k_ + 1, 0);
		for (std::size_t j = 0; j < k_; j++)
			start[j + 1] = start[j] + counts_[j];
		std::vector<std::uint32_t> order(n_);
		{
			std::vector<std::size_t> fill(start.begin(), start.end() - 1);
			for (std::size_t i = 0; i < n_; i++)
				order[fill[out_.assignments[i]]++] = static_cast<std::uint32_t>(i);
		}
		std::size_t largest = *std::max_element(counts_.begin(), counts_.end());
		std::vector<float> values(largest);
		for (std::size_t j = 0; j < k_; j++) {
			if (cancel_.cancelled())
				return Status::Cancelled();
			std::size_t count = counts_[j];
			if (count == 0)
				continue;
			float *c = Centroid(j);
			const std::uint32_t *members = order.data() + start[j];
			for (std::size_t d = 0; d < dim_; d++) {
				for (std::size_t t = 0; t < count; t++)
					values[t] = rows_[members[t] * dim_ + d];
				auto mid = values.begin() + (count - 1) / 2;
				std::nth_element(values.begin(), mid, values.begin() + count);
				c[d] = *mid;
			}
		}
		return Status::Ok();
	}

	// An empty list takes, as its centroid and its one row, the row of the largest list farthest from that list's
	// centroid and from the centroids re-seeded before it in this pass (so two empty lists do not split the same
	// end of a list; ties: lowest index). If those rows all sit on a centroid there is nothing to split: the
	// empty list keeps its old centroid (it can only happen with duplicates; the list stays empty).
	Status ReseedEmpty() {
		std::vector<std::size_t> fresh;
		for (std::size_t j = 0; j < k_; j++) {
			if (counts_[j] != 0)
				continue;
			if (cancel_.cancelled())
				return Status::Cancelled();
			std::size_t largest =
			    static_cast<std::size_t>(std::max_element(counts_.begin(), counts_.end()) - counts_.begin());
			const float *c = Centroid(largest);
			std::size_t far_row = n_;
			float far_dist = 0.0f;
			for (std::size_t i = 0; i < n_; i++) {
				if (out_.assignments[i] != largest || (IsSpherical(metric_) && inv_norm_[i] == 0.0f))
					continue;
				// Seeding's weight: for the spherical metrics the angle, so a longer row of the same direction
				// does not become a second copy of the same centroid.
				float d = SeedWeight(i, c);
				for (std::size_t f : fresh)
					d = std::min(d, SeedWeight(i, Centroid(f)));
				if (d > far_dist) {
					far_dist = d;
					far_row = i;
				}
			}
			if (far_row == n_)
				continue;
			const float *x = Row(far_row);
			float *cj = Centroid(j);
			std::copy(x, x + dim_, cj);
			if (IsSpherical(metric_))
				for (std::size_t d = 0; d < dim_; d++)
					cj[d] *= inv_norm_[far_row];
			out_.assignments[far_row] = static_cast<std::uint32_t>(j);
			counts_[largest]--;
			counts_[j] = 1;
			upper_[far_row] = BoundDistance(x, cj);
			lower_[far_row] = 0.0f; // forces a look at this row next time
			fresh.push_back(j);
		}
		return Status::Ok();
	}

	// upper_ becomes the exact bound-metric distance of each row to its centroid (used by the cap).
	Status ExactDistances() {
		for (std::size_t i = 0; i < n_; i++) {
			if (i % (kCancelEvery * 16) == 0 && cancel_.cancelled())
				return Status::Cancelled();
			upper_[i] = BoundDistance(Row(i), Centroid(out_.assignments[i]));
		}
		return Status::Ok();
	}

	// Keep the max_list_size rows nearest to each centroid; every other row of an over-full list goes to the
	// nearest centroid that still has room (rows taken in index order).
	Status ApplyCap() {
		const std::size_t cap = p_.max_list_size;
		if (cap < n_ && (n_ + cap - 1) / cap > k_)
			return Status::InvalidInput("max_list_size " + std::to_string(cap) + " times " + std::to_string(k_) +
			                            " lists is less than " + std::to_string(n_) + " rows");
		CountLists();
		std::vector<std::uint32_t> evicted;
		{
			std::vector<std::uint32_t> members;
			for (std::size_t j = 0; j < k_; j++) {
				if (counts_[j] <= cap)
					continue;
				if (cancel_.cancelled())
					return Status::Cancelled();
				members.clear();
				for (std::size_t i = 0; i < n_; i++)
					if (out_.assignments[i] == j)
						members.push_back(static_cast<std::uint32_t>(i));
				std::sort(members.begin(), members.end(), [&](std::uint32_t a, std::uint32_t b) {
					return upper_[a] != upper_[b] ? upper_[a] < upper_[b] : a < b;
				});
				evicted.insert(evicted.end(), members.begin() + static_cast<std::ptrdiff_t>(cap), members.end());
				counts_[j] = static_cast<std::uint32_t>(cap);
			}
		}
		std::sort(evicted.begin(), evicted.end());
		for (std::size_t t = 0; t < evicted.size(); t++) {
			if (t % kCancelEvery == 0 && cancel_.cancelled())
				return Status::Cancelled();
			std::uint32_t i = evicted[t];
			const float *x = Row(i);
			std::size_t best = k_;
			float best_d = std::numeric_limits<float>::infinity();
			for (std::size_t j = 0; j < k_; j++) {
				if (counts_[j] >= cap)
					continue;
				float d = BoundDistance(x, Centroid(j));
				if (best == k_ || d < best_d) {
					best = j;
					best_d = d;
				}
			}
			if (best == k_)
				return Status::Internal("k-means size cap: no list with room");
			out_.assignments[i] = static_cast<std::uint32_t>(best);
			counts_[best]++;
		}
		return Status::Ok();
	}

	void Finish() {
		out_.k = k_;
		CountLists();
		out_.list_sizes.assign(counts_.begin(), counts_.end());
		double objective = 0.0;
		for (std::size_t i = 0; i < n_; i++) {
			const float *x = Row(i);
			const float *c = Centroid(out_.assignments[i]);
			double d = IndexDistance(metric_, x, c, dim_);
			if (metric_ == Metric::Cosine)
				d *= inv_norm_[i];
			objective += d;
		}
		out_.objective = objective;
	}

	const float *rows_;
	std::size_t n_, dim_;
	const KMeansParams &p_;
	Metric metric_;
	const KernelSet &ks_;
	const CancelToken &cancel_;
	KMeansResult &out_;
	Rng rng_;
	std::size_t k_ = 0;
	std::vector<float> inv_norm_; // spherical metrics: 1 / |row| (0 for a zero row)
	std::vector<float> upper_, lower_;
	std::vector<std::uint32_t> counts_;
	std::vector<float> move_, half_gap_, old_;
	std::vector<double> sums_;
};

Op OpFor(Metric m) {
	return m == Metric::L2 ? Op::L2Squared : m == Metric::L1 ? Op::L1 : Op::Dot;
}

bool Before(const ListDistance &a, const ListDistance &b) {
	return a.distance != b.distance ? a.distance < b.distance : a.list < b.list;
}

bool AllFinite(const float *v, std::size_t n) {
	for (std::size_t i = 0; i < n; i++)
		if (!std::isfinite(v[i]))
			return false;
	return true;
}

} // namespace

std::size_t KMeansMemoryBytes(std::size_t n, std::size_t dim, std::size_t k, Metric metric) noexcept {
	k = std::min(k, n);
	// centroids + old copy (float) and sums (double): 16 bytes per centroid value.
	std::size_t bytes = SatMulAdd(SatMulAdd(k, dim, 0), 16, 0);
	// assignments, upper, lower: 12 bytes a row; seeding's sample index, weight and the three candidates'
	// weights: 20; inverse norms (spherical) 4 or the median order and value buffer (L1) 8; the size cap's
	// lists: 8 at most.
	std::size_t per_row = 12 + 20 + 8 + (metric == Metric::L1 ? 8 : IsSpherical(metric) ? 4 : 0);
	bytes = SatMulAdd(n, per_row, bytes);
	// counts, movements, half gaps, list sizes, median starts, re-seeded lists.
	bytes = SatMulAdd(k, 40, bytes);
	return bytes;
}

Status TrainKMeans(std::span<const float> rows, std::size_t n, std::size_t dim, const KMeansParams &params,
                   const CancelToken &cancel, KMeansResult &out) {
	if (n == 0)
		return Status::InvalidInput("k-means needs at least one row");
	if (dim == 0)
		return Status::InvalidInput("k-means needs at least one dimension");
	if (n > std::numeric_limits<std::uint32_t>::max())
		return Status::InvalidInput("k-means takes fewer than 2^32 rows");
	if (SatMulAdd(n, dim, 0) != rows.size())
		return Status::InvalidInput("k-means rows: " + std::to_string(rows.size()) + " floats given, n * dim = " +
		                            std::to_string(n) + " * " + std::to_string(dim) + " expected");
	if (params.k == 0 || params.k > kMaxK)
		return Status::InvalidInput("k-means lists must be between 1 and " + std::to_string(kMaxK));
	if (!ValidMetric(params.metric))
		return Status::InvalidInput("k-means: unknown metric");
	if (!params.initial_centroids.empty()) {
		if (params.k > n || SatMulAdd(params.k, dim, 0) != params.initial_centroids.size())
			return Status::InvalidInput("k-means initial centroids must hold k * dim floats, with k <= n");
		Status st = CheckRows(params.initial_centroids.data(), params.k, dim);
		if (!st.ok())
			return Status::InvalidInput("k-means initial centroids: " + st.message());
	}
	if (params.max_iterations < 0 || params.max_iterations > kMaxIterations)
		return Status::InvalidInput("k-means iterations must be between 0 and " + std::to_string(kMaxIterations));
	// The cap is checked again after training, when fewer distinct points may have given fewer lists.
	if (params.max_list_size != 0 && SatMulAdd(params.max_list_size, std::min(params.k, n), 0) < n)
		return Status::InvalidInput("max_list_size " + std::to_string(params.max_list_size) + " times " +
		                            std::to_string(std::min(params.k, n)) + " lists is less than " + std::to_string(n) +
		                            " rows");
	std::size_t need = KMeansMemoryBytes(n, dim, params.k, params.metric);
	if (params.max_bytes != 0 && need > params.max_bytes)
		return Status::LimitExceeded("k-means needs " + std::to_string(need) + " bytes, more than the limit of " +
		                             std::to_string(params.max_bytes));
	S5V_RETURN_IF_ERROR(CheckRows(rows.data(), n, dim));
	try {
		Trainer trainer(rows.data(), n, dim, params, cancel, out);
		return trainer.Run();
	} catch (const std::bad_alloc &) {
		return Status::OutOfMemory("k-means: out of memory for " + std::to_string(need) + " bytes");
	}
}

Status NearestCentroids(std::span<const float> query, std::span<const float> centroids, std::size_t k, Metric metric,
                        std::size_t nprobe, std::vector<ListDistance> &out) {
	out.clear();
	const std::size_t dim = query.size();
	if (dim == 0 || SatMulAdd(k, dim, 0) != centroids.size())
		return Status::InvalidInput("nearest centroids: centroids must hold k * dim floats");
	if (k > std::numeric_limits<std::uint32_t>::max())
		return Status::InvalidInput("nearest centroids: too many lists");
	if (!ValidMetric(metric))
		return Status::InvalidInput("nearest centroids: unknown metric");
	if (!AllFinite(query.data(), dim))
		return Status::InvalidInput("query has a NaN or infinite value");
	nprobe = std::min(nprobe, k);
	if (nprobe == 0)
		return Status::Ok();
	out.resize(k);
	bool negate = metric == Metric::InnerProduct || metric == Metric::Cosine;
	ForEachCentroid(
	    OpFor(metric), ActiveKernels(), query.data(), centroids.data(), k, dim, [&](std::size_t j, float d) {
		    d = negate ? -d : d;
		    out[j] = {std::isnan(d) ? std::numeric_limits<float>::infinity() : d, static_cast<std::uint32_t>(j)};
	    });
	if (nprobe < k) {
		std::nth_element(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(nprobe), out.end(), Before);
		out.resize(nprobe);
	}
	std::sort(out.begin(), out.end(), Before);
	return Status::Ok();
}

Status AssignToNearest(std::span<const float> rows, std::size_t n, std::size_t dim, std::span<const float> centroids,
                       std::size_t k, Metric metric, const CancelToken &cancel, std::span<std::uint32_t> assignments,
                       std::span<float> distances) {
	if (dim == 0 || k == 0)
		return Status::InvalidInput("assign: dim and k must be at least 1");
	if (SatMulAdd(n, dim, 0) != rows.size() || SatMulAdd(k, dim, 0) != centroids.size())
		return Status::InvalidInput("assign: rows must hold n * dim floats and centroids k * dim");
	if (assignments.size() != n || (!distances.empty() && distances.size() != n))
		return Status::InvalidInput("assign: output spans must hold n entries");
	if (k > std::numeric_limits<std::uint32_t>::max())
		return Status::InvalidInput("assign: too many lists");
	if (!ValidMetric(metric))
		return Status::InvalidInput("assign: unknown metric");
	const KernelSet &ks = ActiveKernels();
	for (std::size_t i = 0; i < n; i++) {
		if (i % kCancelEvery == 0 && cancel.cancelled())
			return Status::Cancelled();
		const float *x = rows.data() + i * dim;
		if (!AllFinite(x, dim))
			return Status::InvalidInput("row " + std::to_string(i) + " has a NaN or infinite value");
		std::uint32_t best = 0;
		float best_d = std::numeric_limits<float>::infinity();
		ForEachCentroid(OpFor(metric), ks, x, centroids.data(), k, dim, [&](std::size_t j, float d) {
			if (metric == Metric::InnerProduct || metric == Metric::Cosine)
				d = -d;
			if (d < best_d) {
				best_d = d;
				best = static_cast<std::uint32_t>(j);
			}
		});
		assignments[i] = best;
		if (!distances.empty())
			distances[i] = best_d;
	}
	return Status::Ok();
}

} // namespace s5v
