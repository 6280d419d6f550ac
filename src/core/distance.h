// Distance kernels: a scalar reference and SIMD variants chosen once at load by CPU features.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace s5v {

enum class Metric : std::uint8_t { L2 = 1, InnerProduct = 2, Cosine = 3, L1 = 4 };

// One instruction set's kernels. All accumulate in float (as pgvector does) and never allocate.
struct KernelSet {
	const char *name; // "scalar", "sse2", "avx2", "avx512"
	float (*l2_squared)(const float *a, const float *b, std::size_t n) noexcept;
	float (*inner_product)(const float *a, const float *b, std::size_t n) noexcept;
	float (*l1)(const float *a, const float *b, std::size_t n) noexcept;
	// dot(a,b), dot(a,a), dot(b,b) in one pass, for cosine distance.
	void (*cosine_parts)(const float *a, const float *b, std::size_t n, float *dot, float *norm_a,
	                     float *norm_b) noexcept;
};

// The scalar reference: plain sequential loops.
const KernelSet &ScalarKernels() noexcept;
// A named kernel set if this CPU supports it, else nullptr ("scalar", "sse2", "avx2", "avx512").
const KernelSet *KernelsByName(std::string_view name) noexcept;
// The fastest kernel set this CPU supports; chosen once, never changes afterwards.
const KernelSet &ActiveKernels() noexcept;

// Vectors shorter than this (nearly every literal typed by hand) are summed in the fixed order pgvector's
// auto-vectorised loops use for them (distance.cpp), so SQL results match pgvector's to the last bit; longer ones
// go to the active SIMD kernels. The functions below are the only distances: the SQL operators (vector.cpp) and
// the index (IndexDistance) both call them, so an index scan and a sequential scan order near-ties alike.
inline constexpr std::size_t kShortVector = 16;
float ShortL2Squared(const float *a, const float *b, std::size_t n) noexcept;
float ShortInnerProduct(const float *a, const float *b, std::size_t n) noexcept;
float ShortL1(const float *a, const float *b, std::size_t n) noexcept;
void ShortCosineParts(const float *a, const float *b, std::size_t n, float *dot, float *norm_a, float *norm_b) noexcept;

inline float L2SquaredDistance(const float *a, const float *b, std::size_t n) noexcept {
	return n < kShortVector ? ShortL2Squared(a, b, n) : ActiveKernels().l2_squared(a, b, n);
}
inline float InnerProduct(const float *a, const float *b, std::size_t n) noexcept {
	return n < kShortVector ? ShortInnerProduct(a, b, n) : ActiveKernels().inner_product(a, b, n);
}
inline float L1Distance(const float *a, const float *b, std::size_t n) noexcept {
	return n < kShortVector ? ShortL1(a, b, n) : ActiveKernels().l1(a, b, n);
}
// Cosine distance computed as pgvector does: float parts, double division, similarity clamped to [-1, 1].
// Returns NaN when either vector has zero norm.
double CosineDistance(const float *a, const float *b, std::size_t n) noexcept;
// The same with a given kernel set (tests, benchmarks).
double CosineDistance(const KernelSet &kernels, const float *a, const float *b, std::size_t n) noexcept;

// The distance an index orders by. Monotonic in the SQL operator's distance for that metric:
// L2 -> squared L2; InnerProduct -> -dot; Cosine -> -dot on vectors normalised before storing; L1 -> L1.
inline float IndexDistance(Metric m, const float *a, const float *b, std::size_t n) noexcept {
	switch (m) {
	case Metric::L2:
		return L2SquaredDistance(a, b, n);
	case Metric::InnerProduct:
	case Metric::Cosine:
		return -InnerProduct(a, b, n);
	case Metric::L1:
		return L1Distance(a, b, n);
	}
	return 0.0f;
}

} // namespace s5v
