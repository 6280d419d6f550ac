// The scalar reference kernels, cosine distance and the once-only choice of the active kernel set.
#include "distance.h"

#include <cmath>

#include "kernels.h"

namespace s5v {
namespace {

// The reference loops are pgvector's C loops, summing in float in index order. They must stay
// sequential: GCC does not vectorise float reductions without -ffast-math/-fassociative-math, which
// no build of this file uses (test/unit/distance_test.cpp checks bit-exactness against the same loop).
// At -O3 GCC still vectorises the multiplies and keeps the adds in order (same result, a bit faster);
// S5V_PLAIN_LOOP turns that off so the reference costs what a plain -O2 loop costs in every build type.
#if defined(__clang__)
#define S5V_PLAIN_LOOP // clang vectorises no float reduction without reassociation either
#else
#define S5V_PLAIN_LOOP [[gnu::optimize("no-tree-vectorize", "no-tree-slp-vectorize")]]
#endif

S5V_PLAIN_LOOP float ScalarL2Squared(const float *a, const float *b, std::size_t n) noexcept {
	float sum = 0.0f;
	for (std::size_t i = 0; i < n; i++) {
		float d = a[i] - b[i];
		sum += d * d;
	}
	return sum;
}

S5V_PLAIN_LOOP float ScalarInnerProduct(const float *a, const float *b, std::size_t n) noexcept {
	float sum = 0.0f;
	for (std::size_t i = 0; i < n; i++)
		sum += a[i] * b[i];
	return sum;
}

S5V_PLAIN_LOOP float ScalarL1(const float *a, const float *b, std::size_t n) noexcept {
	float sum = 0.0f;
	for (std::size_t i = 0; i < n; i++)
		sum += std::fabs(a[i] - b[i]);
	return sum;
}

S5V_PLAIN_LOOP void ScalarCosineParts(const float *a, const float *b, std::size_t n, float *dot, float *norm_a,
                                      float *norm_b) noexcept {
	float sab = 0.0f, saa = 0.0f, sbb = 0.0f;
	for (std::size_t i = 0; i < n; i++) {
		sab += a[i] * b[i];
		saa += a[i] * a[i];
		sbb += b[i] * b[i];
	}
	*dot = sab;
	*norm_a = saa;
	*norm_b = sbb;
}

// Short vectors (fewer than kShortVector = 16 dimensions, nearly every literal typed by hand) are summed in the order
// pgvector's auto-vectorised loops use for them when built for x86-64 with AVX (GCC, the default
// -march=native): elements 0..7 as eight lanes reduced pairwise (8 -> 4 -> 2 -> 1) when there are at least 8,
// then the rest in sequence; cosine's sequential tail uses fused multiply-adds. The SQL results then match
// pgvector's to the last bit for such vectors; longer vectors go to the SIMD kernels (same values up to float
// rounding, which differs between pgvector builds as well). The SQL operators and the index both use them.

// Pairwise reduction of eight lanes: (l0+l4, l1+l5, l2+l6, l3+l7) -> (m0+m2, m1+m3) -> n0+n1.
inline float ReduceEightLanes(const float *lane) noexcept {
	float m[4];
	for (std::size_t j = 0; j < 4; j++)
		m[j] = lane[j + 4] + lane[j];
	float n0 = m[2] + m[0];
	float n1 = m[3] + m[1];
	return n1 + n0;
}

enum class ShortKind { L2Squared, InnerProduct, L1 };

float ShortDistance(ShortKind kind, const float *a, const float *b, std::size_t n) noexcept {
	auto term = [kind](float x, float y) -> float {
		switch (kind) {
		case ShortKind::L2Squared: {
			float d = x - y;
			return d * d;
		}
		case ShortKind::InnerProduct:
			return x * y;
		case ShortKind::L1:
			return std::fabs(x - y);
		}
		return 0.0f;
	};
	float sum = 0.0f;
	std::size_t i = 0;
	if (n >= 8) {
		float lane[8];
		for (std::size_t j = 0; j < 8; j++)
			lane[j] = term(a[j], b[j]);
		sum = ReduceEightLanes(lane);
		i = 8;
	}
	for (; i < n; i++) {
		volatile float t = term(a[i], b[i]); // no contraction into an FMA here
		sum += t;
	}
	return sum;
}

void ShortCosinePartsImpl(const float *a, const float *b, std::size_t n, float *dot, float *norm_a,
                          float *norm_b) noexcept {
	float sab = 0.0f, saa = 0.0f, sbb = 0.0f;
	std::size_t i = 0;
	if (n >= 8) {
		float lab[8], laa[8], lbb[8];
		for (std::size_t j = 0; j < 8; j++) {
			volatile float p = a[j] * b[j], q = a[j] * a[j], r = b[j] * b[j];
			lab[j] = p;
			laa[j] = q;
			lbb[j] = r;
		}
		sab = ReduceEightLanes(lab);
		saa = ReduceEightLanes(laa);
		sbb = ReduceEightLanes(lbb);
		i = 8;
	}
	for (; i < n; i++) {
		sab = std::fma(a[i], b[i], sab);
		saa = std::fma(a[i], a[i], saa);
		sbb = std::fma(b[i], b[i], sbb);
	}
	*dot = sab;
	*norm_a = saa;
	*norm_b = sbb;
}

constexpr KernelSet kScalarKernels{"scalar", ScalarL2Squared, ScalarInnerProduct, ScalarL1, ScalarCosineParts};

// CPU checks through GCC's cpuinfo (it also checks that the OS saves the wide registers, via XGETBV).
// Not xsimd::available_architectures(): in xsimd 8.1 it reads SSE2 and AVX from the wrong CPUID
// registers and ignores XCR0, and, being an inline function, it must not be instantiated in the ISA
// translation units anyway.
bool CpuHasSse2() noexcept {
	__builtin_cpu_init();
	return __builtin_cpu_supports("sse2");
}

bool CpuHasAvx2() noexcept {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

// kernels_avx512.cpp is compiled with F, DQ, BW and VL (plus AVX2/FMA), so the compiler may use any of them.
bool CpuHasAvx512() noexcept {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
	       __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") && CpuHasAvx2();
}

const KernelSet &ChooseKernels() noexcept {
	if (CpuHasAvx512())
		return Avx512Kernels();
	if (CpuHasAvx2())
		return Avx2Kernels();
	if (CpuHasSse2())
		return Sse2Kernels();
	return kScalarKernels;
}

} // namespace

const KernelSet &ScalarKernels() noexcept {
	return kScalarKernels;
}

const KernelSet *KernelsByName(std::string_view name) noexcept {
	if (name == "scalar")
		return &kScalarKernels;
	if (name == "sse2")
		return CpuHasSse2() ? &Sse2Kernels() : nullptr;
	if (name == "avx2")
		return CpuHasAvx2() ? &Avx2Kernels() : nullptr;
	if (name == "avx512")
		return CpuHasAvx512() ? &Avx512Kernels() : nullptr;
	return nullptr;
}

const KernelSet &ActiveKernels() noexcept {
	// Initialised once (thread-safe); the choice never changes for the life of the process.
	static const KernelSet &active = ChooseKernels();
	return active;
}

float ShortL2Squared(const float *a, const float *b, std::size_t n) noexcept {
	return ShortDistance(ShortKind::L2Squared, a, b, n);
}

float ShortInnerProduct(const float *a, const float *b, std::size_t n) noexcept {
	return ShortDistance(ShortKind::InnerProduct, a, b, n);
}

float ShortL1(const float *a, const float *b, std::size_t n) noexcept {
	return ShortDistance(ShortKind::L1, a, b, n);
}

void ShortCosineParts(const float *a, const float *b, std::size_t n, float *dot, float *norm_a,
                      float *norm_b) noexcept {
	ShortCosinePartsImpl(a, b, n, dot, norm_a, norm_b);
}

namespace {
// pgvector's vector_cosine_distance: float parts, double division, NaN when a norm is zero (0/0),
// similarity clamped to [-1, 1] so rounding never yields a distance below 0 or above 2.
double CosineFromParts(float dot, float norm_a, float norm_b) noexcept {
	double similarity = static_cast<double>(dot) / std::sqrt(static_cast<double>(norm_a) * static_cast<double>(norm_b));
	if (std::isnan(similarity))
		return std::nan("");
	if (similarity > 1.0)
		similarity = 1.0;
	else if (similarity < -1.0)
		similarity = -1.0;
	return 1.0 - similarity;
}
} // namespace

double CosineDistance(const KernelSet &kernels, const float *a, const float *b, std::size_t n) noexcept {
	float dot = 0.0f, norm_a = 0.0f, norm_b = 0.0f;
	kernels.cosine_parts(a, b, n, &dot, &norm_a, &norm_b);
	return CosineFromParts(dot, norm_a, norm_b);
}

double CosineDistance(const float *a, const float *b, std::size_t n) noexcept {
	float dot = 0.0f, norm_a = 0.0f, norm_b = 0.0f;
	if (n < kShortVector)
		ShortCosineParts(a, b, n, &dot, &norm_a, &norm_b);
	else
		ActiveKernels().cosine_parts(a, b, n, &dot, &norm_a, &norm_b);
	return CosineFromParts(dot, norm_a, norm_b);
}

} // namespace s5v
