// 8-bit scalar quantizer: training, encoding, and the asymmetric distance loops (AVX2 and plain).
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
}

float ScalarQuantizer::Encode(const float *x, std::uint8_t *code) const {
	double err = 0.0;
	for (std::size_t d = 0; d < lo_.size(); d++) {
		float v = (x[d] - lo_[d]) * inv_step_[d];
		// !(v > 0) also maps NaN to 0.
		std::uint8_t c = !(v > 0.0f) ? 0 : v >= 255.0f ? 255 : static_cast<std::uint8_t>(std::lround(v));
		code[d] = c;
		double e = static_cast<double>(x[d]) - (lo_[d] + step_[d] * static_cast<float>(c));
		err += e * e;
	}
	return static_cast<float>(std::sqrt(err));
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
	double constant = 0.0, dot_bound = 0.0, l1_bound = 0.0;
	for (std::size_t d = 0; d < dim; d++) {
		float q = query[d];
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

} // namespace s5v
