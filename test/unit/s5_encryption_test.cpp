// S5 static encryption: round trips across chunk boundaries, tamper detection, the encrypted CID codec.
#include <gtest/gtest.h>

#include <sodium.h>

#include <random>

#include "core/s5/encryption.h"
#include "core/s5/multibase.h"
#include "s5_test_util.h"

namespace s5v::s5 {
namespace {

using test::RandomBytes;

TEST(s5_encryption, PaddedSizes) {
	// The S5 pad-block table: 4 KiB steps up to 80 KiB, then 8 KiB steps up to 160 KiB, ...
	const std::pair<uint64_t, uint64_t> cases[] = {
	    {1, 4096},
	    {4096, 4096},
	    {4097, 8192},
	    {80 * 1024, 80 * 1024},
	    {80 * 1024 + 1, 88 * 1024},
	    {105 * 1024, 112 * 1024},
	    {160 * 1024 + 1, 176 * 1024},
	    {256 * 1024, 256 * 1024},
	};
	for (auto [in, want] : cases) {
		uint64_t got;
		ASSERT_TRUE(PaddedSize(in, &got).ok());
		EXPECT_EQ(got, want) << in;
	}
}

TEST(s5_encryption, RoundTripAcrossChunkBoundaries) {
	const size_t chunk = 256 * 1024;
	for (size_t n : {size_t{1}, size_t{4095}, size_t{4096}, chunk - 1, chunk, chunk + 1, 3 * chunk + 12345}) {
		std::vector<uint8_t> plain = RandomBytes(n, static_cast<uint32_t>(n));
		std::vector<uint8_t> cipher;
		EncryptedCid cid;
		ASSERT_TRUE(EncryptBlob(plain, &cipher, &cid).ok());
		uint64_t padded;
		ASSERT_TRUE(PaddedSize(n, &padded).ok());
		EXPECT_EQ(cid.padding, padded - n);
		EXPECT_EQ(cipher.size(), CiphertextSize(padded, kDefaultChunkSizeLog2));
		EXPECT_EQ(cid.encrypted, BlobIdOf(cipher));
		EXPECT_EQ(cid.plaintext, BlobIdOf(plain));
		std::vector<uint8_t> back;
		Status st = DecryptBlob(cipher, cid, &back);
		ASSERT_TRUE(st.ok()) << st.message();
		EXPECT_EQ(back, plain);
	}
}

// Each chunk is plain XChaCha20-Poly1305 with nonce = chunk index: decrypt chunk 1 directly with libsodium.
TEST(s5_encryption, ChunkNonceIsLittleEndianIndex) {
	std::vector<uint8_t> plain = RandomBytes(300 * 1024, 9);
	EncryptionKey key;
	for (size_t i = 0; i < key.size(); i++)
		key[i] = static_cast<uint8_t>(i);
	std::vector<uint8_t> cipher;
	EncryptedCid cid;
	ASSERT_TRUE(EncryptBlobWithKey(plain, key, &cipher, &cid).ok());
	const size_t chunk = 256 * 1024;
	uint8_t nonce[24] = {1};
	std::vector<uint8_t> out(cipher.size());
	unsigned long long mlen = 0;
	const size_t second_len = cipher.size() - (chunk + 16);
	ASSERT_EQ(crypto_aead_xchacha20poly1305_ietf_decrypt(out.data(), &mlen, nullptr, cipher.data() + chunk + 16,
	                                                     second_len, nullptr, 0, nonce, key.data()),
	          0);
	ASSERT_EQ(mlen, second_len - 16);
	EXPECT_TRUE(std::equal(plain.begin() + chunk, plain.end(), out.begin()));
	for (size_t i = plain.size() - chunk; i < mlen; i++)
		ASSERT_EQ(out[i], 0) << "padding must be zero";
	// Same key and content: same ciphertext (deterministic given the key).
	std::vector<uint8_t> again;
	EncryptedCid cid2;
	ASSERT_TRUE(EncryptBlobWithKey(plain, key, &again, &cid2).ok());
	EXPECT_EQ(again, cipher);
	EXPECT_EQ(cid2, cid);
}

TEST(s5_encryption, FreshKeyPerBlob) {
	std::vector<uint8_t> plain = RandomBytes(1000, 1);
	std::vector<uint8_t> a, b;
	EncryptedCid ca, cb;
	ASSERT_TRUE(EncryptBlob(plain, &a, &ca).ok());
	ASSERT_TRUE(EncryptBlob(plain, &b, &cb).ok());
	EXPECT_NE(ca.key, cb.key);
	EXPECT_NE(a, b);
}

TEST(s5_encryption, TamperingIsDetected) {
	std::vector<uint8_t> plain = RandomBytes(600 * 1024, 2);
	std::vector<uint8_t> cipher;
	EncryptedCid cid;
	ASSERT_TRUE(EncryptBlob(plain, &cipher, &cid).ok());
	std::vector<uint8_t> out;
	for (size_t pos : {size_t{0}, size_t{100}, cipher.size() / 2, cipher.size() - 1}) {
		std::vector<uint8_t> bad = cipher;
		bad[pos] ^= 0x80;
		EXPECT_EQ(DecryptBlob(bad, cid, &out).code(), StatusCode::Corrupt) << pos;
		// Even if the attacker also fixes the outer hash, authentication fails.
		EncryptedCid forged = cid;
		forged.encrypted = BlobIdOf(bad);
		EXPECT_EQ(DecryptBlob(bad, forged, &out).code(), StatusCode::Corrupt) << pos;
	}
	EXPECT_TRUE(out.empty());
	{
		std::vector<uint8_t> bad(cipher.begin(), cipher.end() - 1);
		EXPECT_EQ(DecryptBlob(bad, cid, &out).code(), StatusCode::Corrupt);
	}
	{
		// Swapped chunks: each authenticates only at its own index.
		const size_t c = 256 * 1024 + 16;
		std::vector<uint8_t> bad = cipher;
		std::swap_ranges(bad.begin(), bad.begin() + c, bad.begin() + c);
		EncryptedCid forged = cid;
		forged.encrypted = BlobIdOf(bad);
		EXPECT_EQ(DecryptBlob(bad, forged, &out).code(), StatusCode::Corrupt);
	}
	{
		EncryptedCid wrong_key = cid;
		wrong_key.key[0] ^= 1;
		EXPECT_EQ(DecryptBlob(cipher, wrong_key, &out).code(), StatusCode::Corrupt);
	}
	{
		EncryptedCid wrong_plain = cid;
		wrong_plain.plaintext.hash[3] ^= 1;
		EXPECT_EQ(DecryptBlob(cipher, wrong_plain, &out).code(), StatusCode::Corrupt);
	}
	EXPECT_EQ(DecryptBlob({}, cid, &out).code(), StatusCode::Corrupt);
	std::vector<uint8_t> c2;
	EncryptedCid cid2;
	EXPECT_EQ(EncryptBlob({}, &c2, &cid2).code(), StatusCode::InvalidInput);
}

// The download path skips the hashes the client has already checked (ciphertext) or that authentication makes
// redundant (plaintext); tampering must still fail, and one buffer serves many blobs.
TEST(s5_encryption, ChecksOffStillAuthenticateAndReuseTheBuffer) {
	DecryptChecks fast;
	fast.ciphertext_hash = false;
	fast.plaintext_hash = false;
	std::vector<uint8_t> out;
	for (uint64_t seed : {3u, 4u}) {
		std::vector<uint8_t> plain = RandomBytes(300 * 1024 + 7 * seed, seed);
		std::vector<uint8_t> cipher;
		EncryptedCid cid;
		ASSERT_TRUE(EncryptBlob(plain, &cipher, &cid).ok());
		ASSERT_TRUE(DecryptBlob(cipher, cid, &out, fast).ok());
		EXPECT_EQ(out, plain);
		for (size_t pos : {size_t{0}, cipher.size() / 3, cipher.size() - 1}) {
			std::vector<uint8_t> bad = cipher;
			bad[pos] ^= 0x01;
			EXPECT_EQ(DecryptBlob(bad, cid, &out, fast).code(), StatusCode::Corrupt) << pos;
			EXPECT_TRUE(out.empty());
		}
		std::vector<uint8_t> shorter(cipher.begin(), cipher.end() - 16);
		EXPECT_EQ(DecryptBlob(shorter, cid, &out, fast).code(), StatusCode::Corrupt);
		EncryptedCid wrong_key = cid;
		wrong_key.key[5] ^= 1;
		EXPECT_EQ(DecryptBlob(cipher, wrong_key, &out, fast).code(), StatusCode::Corrupt);
		// A wrong plaintext field of the CID is caught only with the plaintext hash on.
		EncryptedCid wrong_plain = cid;
		wrong_plain.plaintext.hash[0] ^= 1;
		EXPECT_TRUE(DecryptBlob(cipher, wrong_plain, &out, fast).ok());
		EXPECT_EQ(out, plain);
		DecryptChecks thorough = fast;
		thorough.plaintext_hash = true;
		EXPECT_EQ(DecryptBlob(cipher, wrong_plain, &out, thorough).code(), StatusCode::Corrupt);
		// The outer hash is checked only when asked.
		EncryptedCid wrong_outer = cid;
		wrong_outer.encrypted.hash[0] ^= 1;
		EXPECT_TRUE(DecryptBlob(cipher, wrong_outer, &out, fast).ok());
		EXPECT_EQ(DecryptBlob(cipher, wrong_outer, &out).code(), StatusCode::Corrupt);
	}
}

TEST(s5_encryption, EncryptedCidCodec) {
	std::vector<uint8_t> plain = RandomBytes(5000, 3);
	std::vector<uint8_t> cipher;
	EncryptedCid cid;
	ASSERT_TRUE(EncryptBlob(plain, &cipher, &cid).ok());
	std::vector<uint8_t> bytes = EncodeEncryptedCidBytes(cid);
	ASSERT_GE(bytes.size(), 4u + 32 + 32 + 4 + 34);
	EXPECT_EQ(bytes[0], 0xae);
	EXPECT_EQ(bytes[1], 0xa6);
	EXPECT_EQ(bytes[2], 0x12);
	EXPECT_EQ(bytes[3], 0x1e);
	EXPECT_TRUE(std::equal(cid.key.begin(), cid.key.end(), bytes.begin() + 36));
	EXPECT_EQ(bytes[68] | bytes[69] << 8 | bytes[70] << 16 | bytes[71] << 24, static_cast<int>(cid.padding));
	EXPECT_EQ(bytes[72], 0x26);
	EXPECT_EQ(bytes[73], 0x1f);
	EncryptedCid back;
	ASSERT_TRUE(ParseEncryptedCid(EncryptedCidText(cid), &back).ok());
	EXPECT_EQ(back, cid);
	ASSERT_TRUE(ParseEncryptedCid(MultibaseEncode(Multibase::Base32, bytes), &back).ok());
	EXPECT_EQ(back, cid);
	std::vector<uint8_t> out;
	ASSERT_TRUE(DecryptBlob(cipher, back, &out).ok());
	EXPECT_EQ(out, plain);

	auto bad = [&](std::vector<uint8_t> b) { return !ParseEncryptedCidBytes(b, &back).ok(); };
	EXPECT_TRUE(bad({}));
	EXPECT_TRUE(bad(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 71)));
	for (size_t i : {0, 1, 3, 72}) {
		auto b = bytes;
		b[i] ^= 0x01;
		EXPECT_TRUE(bad(b)) << i;
	}
	{
		auto b = bytes;
		b[2] = 9; // chunk size below 1 KiB
		EXPECT_TRUE(bad(b));
	}
	{
		auto b = bytes;
		b[71] = 0xff; // absurd padding
		EXPECT_TRUE(bad(b));
	}
	{
		auto b = bytes;
		b.push_back(0); // size field not trimmed
		EXPECT_TRUE(bad(b));
	}
	EXPECT_FALSE(ParseEncryptedCid("z" + std::string(300, '2'), &back).ok());
}

} // namespace
} // namespace s5v::s5
