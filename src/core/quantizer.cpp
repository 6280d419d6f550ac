// 8-bit scalar quantizer (training, encoding, the asymmetric distance loops, AVX2 and plain) and the RaBitQ-style
// 1-bit codes (rotation, encoding, estimate with an error bound).
#include "quantizer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <string_view>

#include <immintrin.h>

namespace s5v {
namespace {

bool ValidMetric(Metric m) {
	return m == Metric::L2 || m == Metric::InnerProduct || m == Metric::Cosine || m == Metric::L1;
}

bool IsDot(Metric m) {
	return m == Metric::InnerProduct || m == Metric::Cosine;
}

// AVX2 is used when the active kernel set says the CPU has AVX2 and FMA (same choice as the distance kernels).
bool UseAvx2() noexcept {
	static const bool use = [] {
		std::string_view name = ActiveKernels().name;
		return name == "avx2" || name == "avx512";
	}();
	return use;
}

enum class Kind { L2, Dot, L1 };

// Eight codes widened to floats.
[[gnu::target("avx2,fma")]] inline __m256 LoadCodes(const std::uint8_t *p) noexcept {
	std::int64_t bits;
	__builtin_memcpy(&bits, p, sizeof bits);
	return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(bits)));
}

// One code against the prepared query: L2 and L1 take a = q - lo and b = step; Dot takes a = q * step.
// Four accumulators over 32 dimensions hide the FMA latency.
template <Kind kind>
[[gnu::target("avx2,fma")]] float CodeDistanceAvx2(const float *a, const float *b, const std::uint8_t *code,
                                                   std::size_t dim) noexcept {
	__m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
	const __m256 sign = _mm256_set1_ps(-0.0f);
	std::size_t d = 0;
	for (; d + 32 <= dim; d += 32) {
#pragma GCC unroll 4
		for (std::size_t u = 0; u < 4; u++) {
			std::size_t o = d + 8 * u;
			__m256 c = LoadCodes(code + o);
			if constexpr (kind == Kind::Dot) {
				acc[u] = _mm256_fmadd_ps(_mm256_loadu_ps(a + o), c, acc[u]);
			} else {
				__m256 t = _mm256_fnmadd_ps(_mm256_loadu_ps(b + o), c, _mm256_loadu_ps(a + o));
				if constexpr (kind == Kind::L2)
					acc[u] = _mm256_fmadd_ps(t, t, acc[u]);
				else
					acc[u] = _mm256_add_ps(acc[u], _mm256_andnot_ps(sign, t));
			}
		}
	}
	for (; d + 8 <= dim; d += 8) {
		__m256 c = LoadCodes(code + d);
		if constexpr (kind == Kind::Dot) {
			acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + d), c, acc[0]);
		} else {
			__m256 t = _mm256_fnmadd_ps(_mm256_loadu_ps(b + d), c, _mm256_loadu_ps(a + d));
			if constexpr (kind == Kind::L2)
				acc[0] = _mm256_fmadd_ps(t, t, acc[0]);
			else
				acc[0] = _mm256_add_ps(acc[0], _mm256_andnot_ps(sign, t));
		}
	}
	__m256 v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
	float sum = _mm_cvtss_f32(s);
	for (; d < dim; d++) {
		float c = code[d];
		if constexpr (kind == Kind::Dot) {
			sum += a[d] * c;
		} else {
			float t = a[d] - b[d] * c;
			sum += kind == Kind::L2 ? t * t : __builtin_fabsf(t);
		}
	}
	return sum;
}

// The plain version: four partial sums so it does not run at the speed of one dependency chain either.
template <Kind kind>
float CodeDistancePlain(const float *a, const float *b, const std::uint8_t *code, std::size_t dim) noexcept {
	float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
	std::size_t d = 0;
	for (; d + 4 <= dim; d += 4)
		for (std::size_t u = 0; u < 4; u++) {
			float c = code[d + u];
			if constexpr (kind == Kind::Dot) {
				acc[u] += a[d + u] * c;
			} else {
				float t = a[d + u] - b[d + u] * c;
				acc[u] += kind == Kind::L2 ? t * t : std::fabs(t);
			}
		}
	float sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
	for (; d < dim; d++) {
		float c = code[d];
		if constexpr (kind == Kind::Dot) {
			sum += a[d] * c;
		} else {
			float t = a[d] - b[d] * c;
			sum += kind == Kind::L2 ? t * t : std::fabs(t);
		}
	}
	return sum;
}

template <Kind kind>
void DistancesOf(const QuantizedQuery &q, const float *step, const std::uint8_t *codes, std::size_t count,
                 std::size_t stride, std::size_t dim, float *out) {
	const float *a = q.a.data();
	if (UseAvx2()) {
		for (std::size_t i = 0; i < count; i++)
			out[i] = CodeDistanceAvx2<kind>(a, step, codes + i * stride, dim);
	} else {
		for (std::size_t i = 0; i < count; i++)
			out[i] = CodeDistancePlain<kind>(a, step, codes + i * stride, dim);
	}
	if constexpr (kind == Kind::Dot)
		for (std::size_t i = 0; i < count; i++)
			out[i] = -(q.constant + out[i]);
}

} // namespace

Status ScalarQuantizer::Train(std::span<const float> rows, std::size_t n, std::size_t dim, Metric metric) {
	if (!ValidMetric(metric))
		return Status::InvalidInput("quantizer: unknown metric");
	if (n == 0 || dim == 0)
		return Status::InvalidInput("quantizer: training needs at least one row and one dimension");
	std::size_t total;
	if (__builtin_mul_overflow(n, dim, &total) || total != rows.size())
		return Status::InvalidInput("quantizer: rows must hold n * dim floats");
	std::vector<float> lo(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(dim)), hi = lo;
	for (std::size_t i = 0; i < n; i++) {
		const float *x = rows.data() + i * dim;
		for (std::size_t d = 0; d < dim; d++) {
			if (!std::isfinite(x[d]))
				return Status::InvalidInput("quantizer: row " + std::to_string(i) + " has a NaN or infinite value");
			lo[d] = std::min(lo[d], x[d]);
			hi[d] = std::max(hi[d], x[d]);
		}
	}
	std::vector<float> step(dim);
	for (std::size_t d = 0; d < dim; d++) {
		// In double: hi - lo can overflow float for extreme values (the step itself cannot).
		step[d] = static_cast<float>((static_cast<double>(hi[d]) - lo[d]) / 255.0);
	}
	return Load(metric, lo, step);
}

Status ScalarQuantizer::Load(Metric metric, std::span<const float> lo, std::span<const float> step) {
	if (!ValidMetric(metric))
		return Status::InvalidInput("quantizer: unknown metric");
	if (lo.empty() || lo.size() != step.size())
		return Status::InvalidInput("quantizer: lo and step must be non-empty and of equal size");
	for (std::size_t d = 0; d < lo.size(); d++)
		if (!std::isfinite(lo[d]) || !std::isfinite(step[d]) || step[d] < 0.0f)
			return Status::InvalidInput("quantizer: bad parameters for dimension " + std::to_string(d));
	metric_ = metric;
	lo_.assign(lo.begin(), lo.end());
	step_.assign(step.begin(), step.end());
	Finish();
	return Status::Ok();
}

void ScalarQuantizer::Finish() {
	inv_step_.resize(step_.size());
	double sq = 0.0;
	for (std::size_t d = 0; d < step_.size(); d++) {
		inv_step_[d] = step_[d] > 0.0f ? 1.0f / step_[d] : 0.0f;
		sq += static_cast<double>(step_[d]) * step_[d];
	}
	row_error_bound_ = static_cast<float>(0.5 * std::sqrt(sq));
	double mn = 0.0;
	for (std::size_t d = 0; d < step_.size(); d++) {
		double far = std::max(std::fabs(static_cast<double>(lo_[d])),
		                      std::fabs(static_cast<double>(lo_[d]) + 255.0 * static_cast<double>(step_[d])));
		mn += far * far;
	}
	max_norm_ = static_cast<float>(std::sqrt(mn) * (1.0 + 1e-6));
}

float ScalarQuantizer::RowError(const float *x, const std::uint8_t *code, Metric metric) const {
	double err = 0.0;
	for (std::size_t d = 0; d < lo_.size(); d++) {
		double e = static_cast<double>(x[d]) - (lo_[d] + step_[d] * static_cast<float>(code[d]));
		err += metric == Metric::L1 ? std::fabs(e) : e * e;
	}
	if (metric != Metric::L1)
		err = std::sqrt(err);
	float out = static_cast<float>(err * (1.0 + 1e-6));
	return std::nextafter(out, std::numeric_limits<float>::infinity());
}

float ScalarQuantizer::LowerBound(const QuantizedQuery &q, float estimate, float row_error) {
	constexpr float kRel = 2e-4f;
	if (!std::isfinite(estimate) || !std::isfinite(row_error))
		return -std::numeric_limits<float>::infinity();
	switch (q.metric) {
	case Metric::L2: {
		// Besides the relative rounding of the sums, q - lo and step * code round by a few ulps of |q| and of the
		// decoded coordinates: an absolute margin of 1e-5 (|q| + 2 max_norm) on the root covers it many times.
		float s = std::sqrt(std::max(estimate, 0.0f));
		float t = s * (1.0f - kRel) - row_error * (1.0f + kRel) - 1e-5f * (q.norm + 2.0f * q.max_norm);
		return t > 0.0f ? t * t * (1.0f - kRel) : 0.0f;
	}
	case Metric::InnerProduct:
	case Metric::Cosine: {
		// The terms of both sums are bounded by |q| (|lo| + |decoded row|) <= 2 |q| max_norm, and by |q| |x| for the
		// exact one.
		float margin = kRel * q.norm * (2.0f * q.max_norm + row_error) + kRel * std::fabs(estimate);
		return estimate - q.norm * row_error * (1.0f + kRel) - margin;
	}
	case Metric::L1:
		return estimate - row_error * (1.0f + kRel) - kRel * (std::fabs(estimate) + row_error);
	}
	return -std::numeric_limits<float>::infinity();
}

namespace {

// The code of one coordinate: v = (x - lo) / step rounded to the nearest of 0..255 (halves up); !(v > 0) also maps
// NaN to 0. v + 0.5 is below 256 here, so the truncation is the rounding (what std::lround gave, without the call).
inline std::uint8_t CodeOf(float v) {
	return !(v > 0.0f) ? 0 : v >= 255.0f ? 255 : static_cast<std::uint8_t>(v + 0.5f);
}

} // namespace

float ScalarQuantizer::Encode(const float *x, std::uint8_t *code) const {
	double err = 0.0;
	for (std::size_t d = 0; d < lo_.size(); d++) {
		std::uint8_t c = CodeOf((x[d] - lo_[d]) * inv_step_[d]);
		code[d] = c;
		double e = static_cast<double>(x[d]) - (lo_[d] + step_[d] * static_cast<float>(c));
		err += e * e;
	}
	return static_cast<float>(std::sqrt(err));
}

float ScalarQuantizer::EncodeWithError(const float *x, std::uint8_t *code, Metric metric) const {
	double err = 0.0;
	const bool l1 = metric == Metric::L1;
	for (std::size_t d = 0; d < lo_.size(); d++) {
		std::uint8_t c = CodeOf((x[d] - lo_[d]) * inv_step_[d]);
		code[d] = c;
		double e = static_cast<double>(x[d]) - (lo_[d] + step_[d] * static_cast<float>(c));
		err += l1 ? std::fabs(e) : e * e;
	}
	if (!l1)
		err = std::sqrt(err);
	float out = static_cast<float>(err * (1.0 + 1e-6));
	return std::nextafter(out, std::numeric_limits<float>::infinity());
}

void ScalarQuantizer::Decode(const std::uint8_t *code, float *out) const {
	for (std::size_t d = 0; d < lo_.size(); d++)
		out[d] = lo_[d] + step_[d] * static_cast<float>(code[d]);
}

Status ScalarQuantizer::Prepare(std::span<const float> query, QuantizedQuery &out) const {
	const std::size_t dim = lo_.size();
	if (dim == 0)
		return Status::InvalidInput("quantizer: not trained");
	if (query.size() != dim)
		return Status::InvalidInput("quantizer: query has " + std::to_string(query.size()) + " dimensions, not " +
		                            std::to_string(dim));
	out.metric = metric_;
	out.a.resize(dim);
	double constant = 0.0, dot_bound = 0.0, l1_bound = 0.0, norm = 0.0;
	for (std::size_t d = 0; d < dim; d++) {
		float q = query[d];
		norm += static_cast<double>(q) * q;
		if (!std::isfinite(q))
			return Status::InvalidInput("query has a NaN or infinite value");
		if (IsDot(metric_)) {
			out.a[d] = q * step_[d];
			constant += static_cast<double>(q) * lo_[d];
			dot_bound += std::fabs(static_cast<double>(q) * step_[d]);
		} else {
			out.a[d] = q - lo_[d];
		}
		l1_bound += step_[d];
	}
	out.constant = static_cast<float>(constant);
	out.dot_error_bound = static_cast<float>(0.5 * dot_bound);
	out.l1_error_bound = static_cast<float>(0.5 * l1_bound);
	out.norm = static_cast<float>(std::sqrt(norm) * (1.0 + 1e-6));
	out.max_norm = max_norm_;
	return Status::Ok();
}

float ScalarQuantizer::Distance(const QuantizedQuery &q, const std::uint8_t *code) const {
	float out;
	Distances(q, code, 1, code_size(), &out);
	return out;
}

void ScalarQuantizer::Distances(const QuantizedQuery &q, const std::uint8_t *codes, std::size_t count,
                                std::size_t stride, float *out) const {
	const std::size_t dim = lo_.size();
	if (q.a.size() != dim || dim == 0) { // not prepared by this quantizer: no answer rather than a bad read
		std::fill(out, out + count, std::numeric_limits<float>::quiet_NaN());
		return;
	}
	switch (q.metric) {
	case Metric::L2:
		DistancesOf<Kind::L2>(q, step_.data(), codes, count, stride, dim, out);
		break;
	case Metric::L1:
		DistancesOf<Kind::L1>(q, step_.data(), codes, count, stride, dim, out);
		break;
	case Metric::InnerProduct:
	case Metric::Cosine:
		DistancesOf<Kind::Dot>(q, step_.data(), codes, count, stride, dim, out);
		break;
	}
}

namespace {

constexpr std::size_t kMaxBinaryDim = std::size_t{1} << 16;

std::uint64_t SplitMix64(std::uint64_t &state) {
	std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

// In-place unnormalised Walsh-Hadamard transform of n (a power of two) floats.
void Fwht(float *v, std::size_t n) {
	for (std::size_t len = 1; len < n; len <<= 1)
		for (std::size_t i = 0; i < n; i += 2 * len)
			for (std::size_t j = i; j < i + len; j++) {
				float a = v[j], b = v[j + len];
				v[j] = a + b;
				v[j + len] = a - b;
			}
}

} // namespace

Status BinaryQuantizer::Init(std::size_t dim, Metric metric, std::uint64_t seed) {
	if (metric != Metric::L2 && metric != Metric::InnerProduct && metric != Metric::Cosine)
		return Status::InvalidInput("binary quantizer: metric must be L2, inner product or cosine");
	if (dim == 0 || dim > kMaxBinaryDim)
		return Status::InvalidInput("binary quantizer: dimensions must be between 1 and " +
		                            std::to_string(kMaxBinaryDim));
	metric_ = metric;
	dim_ = dim;
	padded_ = 8;
	while (padded_ < dim)
		padded_ <<= 1;
	signs_.resize(3 * padded_);
	std::uint64_t state = seed;
	for (std::size_t i = 0; i < signs_.size(); i += 64) {
		std::uint64_t bits = SplitMix64(state);
		for (std::size_t b = 0; b < 64 && i + b < signs_.size(); b++)
			signs_[i + b] = (bits >> b) & 1 ? 1.0f : -1.0f;
	}
	return Status::Ok();
}

void BinaryQuantizer::Rotate(const float *v, float *out) const {
	std::copy(v, v + dim_, out);
	std::fill(out + dim_, out + padded_, 0.0f);
	const float scale = 1.0f / std::sqrt(static_cast<float>(padded_));
	for (int round = 0; round < 3; round++) {
		const float *sign = signs_.data() + round * padded_;
		for (std::size_t i = 0; i < padded_; i++)
			out[i] *= sign[i];
		Fwht(out, padded_);
		for (std::size_t i = 0; i < padded_; i++)
			out[i] *= scale;
	}
}

Status BinaryQuantizer::Encode(std::span<const float> x, std::span<const float> centroid, std::uint8_t *code,
                               std::vector<float> &scratch) const {
	if (dim_ == 0)
		return Status::InvalidInput("binary quantizer: not initialised");
	if (x.size() != dim_ || (!centroid.empty() && centroid.size() != dim_))
		return Status::InvalidInput("binary quantizer: row and centroid must have " + std::to_string(dim_) +
		                            " dimensions");
	scratch.resize(dim_ + padded_);
	float *o = scratch.data(), *r = scratch.data() + dim_;
	double norm2 = 0.0;
	for (std::size_t d = 0; d < dim_; d++) {
		o[d] = centroid.empty() ? x[d] : x[d] - centroid[d];
		norm2 += static_cast<double>(o[d]) * o[d];
	}
	if (!std::isfinite(norm2))
		return Status::InvalidInput("binary quantizer: row has a NaN or infinite value");
	Rotate(o, r);
	double abs_sum = 0.0;
	for (std::size_t j = 0; j < padded_ / 8; j++) {
		std::uint8_t byte = 0;
		for (std::size_t b = 0; b < 8; b++) {
			float v = r[8 * j + b];
			byte |= static_cast<std::uint8_t>((v > 0.0f ? 1u : 0u) << b);
			abs_sum += std::fabs(v);
		}
		code[j] = byte;
	}
	float f[3] = {0.0f, 0.0f, static_cast<float>(norm2)};
	double norm = std::sqrt(norm2);
	if (norm > 0.0) {
		double a = abs_sum / (std::sqrt(static_cast<double>(padded_)) * norm); // <xb, R o / |o|>, in (0, 1]
		a = std::min(a, 1.0);
		f[0] = static_cast<float>(norm / a);
		f[1] = static_cast<float>(norm * std::sqrt(std::max(0.0, 1.0 - a * a)) / a);
	}
	__builtin_memcpy(code + padded_ / 8, f, sizeof f);
	return Status::Ok();
}

Status BinaryQuantizer::Prepare(std::span<const float> query, std::span<const float> centroid, BinaryQuery &out,
                                float eps0) const {
	if (dim_ == 0)
		return Status::InvalidInput("binary quantizer: not initialised");
	if (!(eps0 > 0.0f) || !std::isfinite(eps0))
		return Status::InvalidInput("binary quantizer: eps0 must be positive");
	if (query.size() != dim_ || (!centroid.empty() && centroid.size() != dim_))
		return Status::InvalidInput("binary quantizer: query and centroid must have " + std::to_string(dim_) +
		                            " dimensions");
	std::vector<float> v(dim_), rv(padded_);
	double norm2 = 0.0, constant = 0.0;
	for (std::size_t d = 0; d < dim_; d++) {
		if (!std::isfinite(query[d]))
			return Status::InvalidInput("query has a NaN or infinite value");
		float c = centroid.empty() ? 0.0f : centroid[d];
		v[d] = metric_ == Metric::L2 ? query[d] - c : query[d];
		norm2 += static_cast<double>(v[d]) * v[d];
		constant += static_cast<double>(query[d]) * c;
	}
	Rotate(v.data(), rv.data());
	out.metric = metric_;
	out.norm = static_cast<float>(std::sqrt(norm2));
	out.constant = static_cast<float>(metric_ == Metric::L2 ? norm2 : constant);
	out.eps0 = eps0;
	out.bound_scale = out.norm * eps0 / std::sqrt(static_cast<float>(padded_ - 1));
	double sum = 0.0;
	for (float x : rv)
		sum += x;
	out.sum = static_cast<float>(sum);
	// Table j, entry b: the sum of the coordinates 8j + i of R v for the bits i set in b.
	out.lut.resize(padded_ / 8 * 256);
	for (std::size_t j = 0; j < padded_ / 8; j++) {
		float *t = out.lut.data() + j * 256;
		t[0] = 0.0f;
		for (unsigned b = 1; b < 256; b++)
			t[b] = t[b & (b - 1)] + rv[8 * j + static_cast<std::size_t>(__builtin_ctz(b))];
	}
	return Status::Ok();
}

void BinaryQuantizer::Estimate(const BinaryQuery &q, const std::uint8_t *codes, std::size_t count, std::size_t stride,
                               float *estimate, float *lower) const {
	const std::size_t bytes = padded_ / 8;
	if (q.lut.size() != bytes * 256 || bytes == 0) { // not prepared by this quantizer
		std::fill(estimate, estimate + count, std::numeric_limits<float>::quiet_NaN());
		if (lower != nullptr)
			std::fill(lower, lower + count, std::numeric_limits<float>::quiet_NaN());
		return;
	}
	const float inv_sqrt = 1.0f / std::sqrt(static_cast<float>(padded_));
	const float *lut = q.lut.data();
	for (std::size_t i = 0; i < count; i++) {
		const std::uint8_t *code = codes + i * stride;
		// Four partial sums: the lookups are independent, the adds need not be one chain.
		float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
		std::size_t j = 0;
		for (; j + 4 <= bytes; j += 4)
			for (std::size_t u = 0; u < 4; u++)
				s[u] += lut[(j + u) * 256 + code[j + u]];
		for (; j < bytes; j++)
			s[0] += lut[j * 256 + code[j]];
		float f[3];
		__builtin_memcpy(f, code + bytes, sizeof f);
		float xv = (2.0f * ((s[0] + s[1]) + (s[2] + s[3])) - q.sum) * inv_sqrt; // <xb, R v>
		float dot = f[0] * xv;                                                  // estimate of <v, o>
		float err = f[1] * q.bound_scale;
		float est, half;
		if (q.metric == Metric::L2) {
			est = f[2] + q.constant - 2.0f * dot;
			half = 2.0f * err;
		} else {
			est = -(q.constant + dot);
			half = err;
		}
		estimate[i] = est;
		if (lower != nullptr)
			lower[i] = est - half;
	}
}

} // namespace s5v
