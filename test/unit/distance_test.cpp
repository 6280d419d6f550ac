// Every SIMD kernel set against the scalar reference, the reference against pgvector's loops, cosine
// edge cases, and the once-only dispatch.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "distance.h"

namespace {

using s5v::KernelSet;

const char *const kAllNames[] = {"scalar", "sse2", "avx2", "avx512"};

std::vector<const KernelSet *> SupportedKernels() {
	std::vector<const KernelSet *> out;
	for (const char *name : kAllNames)
		if (const KernelSet *k = s5v::KernelsByName(name))
			out.push_back(k);
	return out;
}

std::vector<std::size_t> TestLengths() {
	std::vector<std::size_t> lengths;
	for (std::size_t n = 1; n <= 70; n++)
		lengths.push_back(n);
	for (std::size_t n : {128, 384, 768, 1536, 16000})
		lengths.push_back(n);
	return lengths;
}

// Two vectors of n floats starting one float past a 64-byte boundary, so no load is aligned.
struct UnalignedPair {
	std::vector<float> storage_a, storage_b;
	float *a, *b;
	UnalignedPair(std::size_t n, std::mt19937 &rng, float lo = -1.0f, float hi = 1.0f)
	    : storage_a(n + 32), storage_b(n + 32) {
		a = Misalign(storage_a);
		b = Misalign(storage_b);
		std::uniform_real_distribution<float> dist(lo, hi);
		for (std::size_t i = 0; i < n; i++) {
			a[i] = dist(rng);
			b[i] = dist(rng);
		}
	}
	static float *Misalign(std::vector<float> &v) {
		auto addr = reinterpret_cast<std::uintptr_t>(v.data());
		std::size_t skip = ((64 - addr % 64) % 64) / sizeof(float) + 1;
		return v.data() + skip;
	}
};

// Tolerance for a float sum of terms whose magnitudes add up to `mass`: reordering changes the
// rounding by a few ulp of the running sums, far below 1e-4 of the mass (n <= 16000).
double Tolerance(double mass) {
	return 1e-4 * mass + 1e-6;
}

TEST(Distance, ScalarIsAlwaysAvailable) {
	ASSERT_NE(s5v::KernelsByName("scalar"), nullptr);
	EXPECT_EQ(s5v::KernelsByName("scalar"), &s5v::ScalarKernels());
	EXPECT_STREQ(s5v::ScalarKernels().name, "scalar");
}

TEST(Distance, UnknownNamesGiveNullptr) {
	EXPECT_EQ(s5v::KernelsByName(""), nullptr);
	EXPECT_EQ(s5v::KernelsByName("avx"), nullptr);
	EXPECT_EQ(s5v::KernelsByName("AVX2"), nullptr);
	EXPECT_EQ(s5v::KernelsByName("neon"), nullptr);
	EXPECT_EQ(s5v::KernelsByName("avx5120"), nullptr);
	EXPECT_EQ(s5v::KernelsByName(std::string_view("avx2\0", 5)), nullptr);
}

TEST(Distance, KernelNamesMatchTheirLookupName) {
	for (const char *name : kAllNames)
		if (const KernelSet *k = s5v::KernelsByName(name)) {
			EXPECT_STREQ(k->name, name);
			EXPECT_NE(k->l2_squared, nullptr);
			EXPECT_NE(k->inner_product, nullptr);
			EXPECT_NE(k->l1, nullptr);
			EXPECT_NE(k->cosine_parts, nullptr);
		}
}

// Independent of distance.cpp's checks: what the fastest supported set must be on this CPU.
std::string ExpectedFastest() {
	__builtin_cpu_init();
	bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
	    __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
		return "avx512";
	if (avx2)
		return "avx2";
	if (__builtin_cpu_supports("sse2"))
		return "sse2";
	return "scalar";
}

TEST(Distance, ActiveKernelsIsTheFastestSupported) {
	const std::string expected = ExpectedFastest();
	EXPECT_EQ(std::string(s5v::ActiveKernels().name), expected);
	EXPECT_EQ(&s5v::ActiveKernels(), s5v::KernelsByName(expected));
	// Everything slower is also offered by name.
	bool below = false;
	for (int i = 3; i >= 0; i--) {
		if (expected == kAllNames[i])
			below = true;
		if (below) {
			EXPECT_NE(s5v::KernelsByName(kAllNames[i]), nullptr) << kAllNames[i];
		}
	}
}

TEST(Distance, ActiveKernelsIsStable) {
	const KernelSet *first = &s5v::ActiveKernels();
	for (int i = 0; i < 1000; i++)
		ASSERT_EQ(&s5v::ActiveKernels(), first);
}

// The reference must be pgvector's loop, bit for bit (no reassociation, no vectorised reduction).
TEST(Distance, ScalarMatchesSequentialLoopExactly) {
	std::mt19937 rng(7);
	const KernelSet &k = s5v::ScalarKernels();
	for (std::size_t n : TestLengths()) {
		UnalignedPair p(n, rng);
		float l2 = 0.0f, ip = 0.0f, l1 = 0.0f, ab = 0.0f, aa = 0.0f, bb = 0.0f;
		for (std::size_t i = 0; i < n; i++) {
			float d = p.a[i] - p.b[i];
			l2 += d * d;
			ip += p.a[i] * p.b[i];
			l1 += std::fabs(p.a[i] - p.b[i]);
			ab += p.a[i] * p.b[i];
			aa += p.a[i] * p.a[i];
			bb += p.b[i] * p.b[i];
		}
		EXPECT_EQ(k.l2_squared(p.a, p.b, n), l2) << n;
		EXPECT_EQ(k.inner_product(p.a, p.b, n), ip) << n;
		EXPECT_EQ(k.l1(p.a, p.b, n), l1) << n;
		float dot, na, nb;
		k.cosine_parts(p.a, p.b, n, &dot, &na, &nb);
		EXPECT_EQ(dot, ab) << n;
		EXPECT_EQ(na, aa) << n;
		EXPECT_EQ(nb, bb) << n;
	}
}

// The reference is also right: against double-precision sums.
TEST(Distance, ScalarIsCloseToDoublePrecision) {
	std::mt19937 rng(11);
	const KernelSet &k = s5v::ScalarKernels();
	for (std::size_t n : TestLengths()) {
		UnalignedPair p(n, rng);
		double l2 = 0, ip = 0, ip_mass = 0, l1 = 0;
		for (std::size_t i = 0; i < n; i++) {
			double d = static_cast<double>(p.a[i]) - p.b[i];
			l2 += d * d;
			ip += static_cast<double>(p.a[i]) * p.b[i];
			ip_mass += std::fabs(static_cast<double>(p.a[i]) * p.b[i]);
			l1 += std::fabs(d);
		}
		EXPECT_NEAR(k.l2_squared(p.a, p.b, n), l2, Tolerance(l2)) << n;
		EXPECT_NEAR(k.inner_product(p.a, p.b, n), ip, Tolerance(ip_mass)) << n;
		EXPECT_NEAR(k.l1(p.a, p.b, n), l1, Tolerance(l1)) << n;
	}
}

void CompareWithReference(const KernelSet &k, float lo, float hi, unsigned seed) {
	std::mt19937 rng(seed);
	const KernelSet &ref = s5v::ScalarKernels();
	for (std::size_t n : TestLengths()) {
		for (int round = 0; round < 3; round++) {
			UnalignedPair p(n, rng, lo, hi);
			double ip_mass = 0, aa_mass = 0, bb_mass = 0;
			for (std::size_t i = 0; i < n; i++) {
				ip_mass += std::fabs(static_cast<double>(p.a[i]) * p.b[i]);
				aa_mass += static_cast<double>(p.a[i]) * p.a[i];
				bb_mass += static_cast<double>(p.b[i]) * p.b[i];
			}
			float want_l2 = ref.l2_squared(p.a, p.b, n);
			float want_l1 = ref.l1(p.a, p.b, n);
			EXPECT_NEAR(k.l2_squared(p.a, p.b, n), want_l2, Tolerance(want_l2)) << k.name << " n=" << n;
			EXPECT_NEAR(k.inner_product(p.a, p.b, n), ref.inner_product(p.a, p.b, n), Tolerance(ip_mass))
			    << k.name << " n=" << n;
			EXPECT_NEAR(k.l1(p.a, p.b, n), want_l1, Tolerance(want_l1)) << k.name << " n=" << n;

			float dot, na, nb, rdot, rna, rnb;
			k.cosine_parts(p.a, p.b, n, &dot, &na, &nb);
			ref.cosine_parts(p.a, p.b, n, &rdot, &rna, &rnb);
			EXPECT_NEAR(dot, rdot, Tolerance(ip_mass)) << k.name << " n=" << n;
			EXPECT_NEAR(na, rna, Tolerance(aa_mass)) << k.name << " n=" << n;
			EXPECT_NEAR(nb, rnb, Tolerance(bb_mass)) << k.name << " n=" << n;

			double got = s5v::CosineDistance(k, p.a, p.b, n);
			double want = s5v::CosineDistance(ref, p.a, p.b, n);
			// |d similarity| <= |d dot| / norms + similarity * (relative change of the norms).
			double norms = std::sqrt(aa_mass * bb_mass);
			EXPECT_NEAR(got, want, Tolerance(ip_mass) / norms + 4e-4) << k.name << " n=" << n;
			EXPECT_GE(got, 0.0);
			EXPECT_LE(got, 2.0);
		}
	}
}

TEST(Distance, EveryKernelMatchesReferenceOnSymmetricInputs) {
	for (const KernelSet *k : SupportedKernels())
		CompareWithReference(*k, -1.0f, 1.0f, 42);
}

TEST(Distance, EveryKernelMatchesReferenceOnPositiveWideInputs) {
	for (const KernelSet *k : SupportedKernels())
		CompareWithReference(*k, 0.0f, 1000.0f, 43);
}

TEST(Distance, EveryKernelGivesExactZeroForIdenticalVectors) {
	std::mt19937 rng(5);
	for (const KernelSet *k : SupportedKernels())
		for (std::size_t n : TestLengths()) {
			UnalignedPair p(n, rng, -100.0f, 100.0f);
			EXPECT_EQ(k->l2_squared(p.a, p.a, n), 0.0f) << k->name << " n=" << n;
			EXPECT_EQ(k->l1(p.a, p.a, n), 0.0f) << k->name << " n=" << n;
			double cos = s5v::CosineDistance(*k, p.a, p.a, n);
			EXPECT_GE(cos, 0.0) << k->name << " n=" << n; // clamped, never negative
			EXPECT_NEAR(cos, 0.0, 1e-6) << k->name << " n=" << n;
		}
}

TEST(Distance, OppositeVectorsHaveCosineDistanceAtMostTwo) {
	std::mt19937 rng(6);
	for (const KernelSet *k : SupportedKernels())
		for (std::size_t n : TestLengths()) {
			UnalignedPair p(n, rng);
			for (std::size_t i = 0; i < n; i++)
				p.b[i] = -p.a[i];
			double cos = s5v::CosineDistance(*k, p.a, p.b, n);
			EXPECT_LE(cos, 2.0) << k->name << " n=" << n;
			EXPECT_NEAR(cos, 2.0, 1e-6) << k->name << " n=" << n;
		}
}

TEST(Distance, ZeroVectorsGiveNaNCosine) {
	std::mt19937 rng(8);
	for (const KernelSet *k : SupportedKernels())
		for (std::size_t n : TestLengths()) {
			UnalignedPair p(n, rng);
			std::vector<float> zero(n, 0.0f);
			EXPECT_TRUE(std::isnan(s5v::CosineDistance(*k, zero.data(), zero.data(), n))) << k->name << n;
			EXPECT_TRUE(std::isnan(s5v::CosineDistance(*k, zero.data(), p.b, n))) << k->name << n;
			EXPECT_TRUE(std::isnan(s5v::CosineDistance(*k, p.a, zero.data(), n))) << k->name << n;
			EXPECT_EQ(k->l2_squared(zero.data(), zero.data(), n), 0.0f);
			EXPECT_EQ(k->inner_product(zero.data(), p.b, n), 0.0f);
		}
	EXPECT_TRUE(std::isnan(s5v::CosineDistance(nullptr, nullptr, 0)));
}

TEST(Distance, KnownValues) {
	const float a[] = {1, 2, 3};
	const float b[] = {4, 5, 6};
	for (const KernelSet *k : SupportedKernels()) {
		EXPECT_EQ(k->l2_squared(a, b, 3), 27.0f) << k->name;
		EXPECT_EQ(k->inner_product(a, b, 3), 32.0f) << k->name;
		EXPECT_EQ(k->l1(a, b, 3), 9.0f) << k->name;
		// pgvector: SELECT '[1,2,3]'::vector <=> '[4,5,6]' -> 0.025368153802923787
		EXPECT_DOUBLE_EQ(s5v::CosineDistance(*k, a, b, 3), 1.0 - 32.0 / std::sqrt(14.0 * 77.0)) << k->name;
	}
	EXPECT_EQ(s5v::L2SquaredDistance(a, b, 3), 27.0f);
	EXPECT_EQ(s5v::InnerProduct(a, b, 3), 32.0f);
	EXPECT_EQ(s5v::L1Distance(a, b, 3), 9.0f);
	EXPECT_EQ(s5v::IndexDistance(s5v::Metric::L2, a, b, 3), 27.0f);
	EXPECT_EQ(s5v::IndexDistance(s5v::Metric::InnerProduct, a, b, 3), -32.0f);
	EXPECT_EQ(s5v::IndexDistance(s5v::Metric::Cosine, a, b, 3), -32.0f);
	EXPECT_EQ(s5v::IndexDistance(s5v::Metric::L1, a, b, 3), 9.0f);
}

TEST(Distance, EmptyInputIsZero) {
	for (const KernelSet *k : SupportedKernels()) {
		EXPECT_EQ(k->l2_squared(nullptr, nullptr, 0), 0.0f);
		EXPECT_EQ(k->inner_product(nullptr, nullptr, 0), 0.0f);
		EXPECT_EQ(k->l1(nullptr, nullptr, 0), 0.0f);
	}
}

// The masked tail must not read past the end: the vectors end exactly at an inaccessible boundary
// under AddressSanitizer (a heap block of exactly n floats), every length.
TEST(Distance, NoReadPastTheEnd) {
	std::mt19937 rng(9);
	std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
	for (const KernelSet *k : SupportedKernels())
		for (std::size_t n : TestLengths()) {
			auto a = std::make_unique<float[]>(n);
			auto b = std::make_unique<float[]>(n);
			for (std::size_t i = 0; i < n; i++) {
				a[i] = dist(rng);
				b[i] = dist(rng);
			}
			float dot, na, nb;
			volatile float sink =
			    k->l2_squared(a.get(), b.get(), n) + k->inner_product(a.get(), b.get(), n) + k->l1(a.get(), b.get(), n);
			k->cosine_parts(a.get(), b.get(), n, &dot, &na, &nb);
			(void)sink;
		}
}

} // namespace
