// BLAKE3 wrapper against the official test vectors and Debian's b3sum.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>

#include <unistd.h>

#include "core/s5/blake3_hash.h"
#include "core/s5/multibase.h"
#include "s5_test_util.h"

namespace s5v::s5 {
namespace {

std::vector<uint8_t> VectorInput(size_t len) {
	std::vector<uint8_t> in(len);
	for (size_t i = 0; i < len; i++)
		in[i] = static_cast<uint8_t>(i % 251);
	return in;
}

TEST(s5_blake3, OfficialVectors) {
	test::Json doc = test::LoadJson("blake3_test_vectors.json");
	const std::string key = doc["key"].text;
	const std::string context = doc["context_string"].text;
	ASSERT_EQ(key.size(), 32u);
	ASSERT_GE(doc["cases"].items.size(), 30u);
	for (const test::Json &c : doc["cases"].items) {
		const size_t len = c["input_len"].U64();
		SCOPED_TRACE("input_len=" + std::to_string(len));
		std::vector<uint8_t> in = VectorInput(len);
		const std::string want = c["hash"].text;

		Blake3Hash h = Blake3(in);
		EXPECT_EQ(HexEncode(h), want.substr(0, 64));

		Blake3Hasher hasher;
		hasher.Update(in);
		std::vector<uint8_t> xof(want.size() / 2);
		hasher.FinalizeXof(xof);
		EXPECT_EQ(HexEncode(xof), want);

		// Incremental in uneven pieces gives the same result.
		Blake3Hasher pieces;
		size_t pos = 0, step = 1;
		while (pos < in.size()) {
			size_t n = std::min(step, in.size() - pos);
			pieces.Update(std::span<const uint8_t>(in).subspan(pos, n));
			pos += n;
			step = step * 3 + 1;
		}
		EXPECT_EQ(pieces.Finalize(), h);

		Blake3Hasher keyed =
		    Blake3Hasher::Keyed(std::span<const uint8_t, 32>(reinterpret_cast<const uint8_t *>(key.data()), 32));
		keyed.Update(in);
		std::vector<uint8_t> kx(c["keyed_hash"].text.size() / 2);
		keyed.FinalizeXof(kx);
		EXPECT_EQ(HexEncode(kx), c["keyed_hash"].text);

		Blake3Hasher derive = Blake3Hasher::DeriveKey(context);
		derive.Update(in);
		std::vector<uint8_t> dx(c["derive_key"].text.size() / 2);
		derive.FinalizeXof(dx);
		EXPECT_EQ(HexEncode(dx), c["derive_key"].text);
	}
}

TEST(s5_blake3, ResetStartsOver) {
	Blake3Hasher h;
	h.Update(test::Bytes("garbage"));
	h.Reset();
	h.Update(test::Bytes("Hello, world!"));
	EXPECT_EQ(HexEncode(h.Finalize()), "ede5c0b10f2ec4979c69b52f61e42ff5b413519ce09be0f14d098dcfe5f6f98d");
}

// Debian's b3sum is an independent implementation (Rust): compare on random data of awkward sizes.
TEST(s5_blake3, MatchesB3sum) {
	if (std::system("command -v b3sum >/dev/null 2>&1") != 0)
		GTEST_SKIP() << "b3sum not installed";
	std::mt19937_64 rng(42);
	char path[] = "/tmp/s5v_b3sum_XXXXXX";
	int fd = mkstemp(path);
	ASSERT_GE(fd, 0);
	close(fd);
	for (size_t len : {size_t{1}, size_t{1023}, size_t{1025}, size_t{65536 + 7}, size_t{3 << 20}}) {
		std::vector<uint8_t> data(len);
		for (auto &b : data)
			b = static_cast<uint8_t>(rng());
		FILE *f = std::fopen(path, "wb");
		ASSERT_NE(f, nullptr);
		ASSERT_EQ(std::fwrite(data.data(), 1, data.size(), f), data.size());
		std::fclose(f);
		FILE *p = popen((std::string("b3sum --no-names ") + path).c_str(), "r");
		ASSERT_NE(p, nullptr);
		char buf[128] = {};
		ASSERT_NE(std::fgets(buf, sizeof(buf), p), nullptr);
		pclose(p);
		EXPECT_EQ(HexEncode(Blake3(data)), std::string(buf, 64)) << "len=" << len;
	}
	std::remove(path);
}

} // namespace
} // namespace s5v::s5
