// Multibase and S5 CIDs against the multibase project's tables and the collected S5 identifier vectors.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <sstream>

#include "core/s5/cid.h"
#include "core/s5/multibase.h"
#include "s5_test_util.h"

namespace s5v::s5 {
namespace {

// Reads a multibase test table: first line `encoding, "<input>"`, then `<name>, "<text>"` rows.
struct MultibaseTable {
	std::string input;
	std::map<std::string, std::string> rows;
};

std::string Unescape(const std::string &s) {
	std::string out;
	for (size_t i = 0; i < s.size(); i++) {
		if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] == 'x') {
			out.push_back(static_cast<char>(std::stoi(s.substr(i + 2, 2), nullptr, 16)));
			i += 3;
		} else {
			out.push_back(s[i]);
		}
	}
	return out;
}

MultibaseTable LoadTable(const std::string &file) {
	std::istringstream in(test::ReadFileOrThrow(test::TestDataPath("multibase/" + file)));
	MultibaseTable t;
	std::string line;
	bool first = true;
	while (std::getline(in, line)) {
		size_t comma = line.find(',');
		size_t q1 = line.find('"'), q2 = line.rfind('"');
		if (comma == std::string::npos || q1 == std::string::npos || q2 <= q1)
			continue;
		std::string value = line.substr(q1 + 1, q2 - q1 - 1);
		if (first) {
			t.input = Unescape(value);
			first = false;
		} else {
			t.rows[line.substr(0, comma)] = value;
		}
	}
	return t;
}

const std::map<std::string, Multibase> kSupported = {
    {"base16", Multibase::Base16},
    {"base32", Multibase::Base32},
    {"base58btc", Multibase::Base58btc},
    {"base64url", Multibase::Base64url},
};

class s5_multibase_table : public ::testing::TestWithParam<std::string> {};

TEST_P(s5_multibase_table, EncodeAndDecode) {
	MultibaseTable t = LoadTable(GetParam());
	ASSERT_FALSE(t.input.empty());
	std::vector<uint8_t> input = test::Bytes(t.input);
	int checked = 0;
	for (const auto &[name, text] : t.rows) {
		SCOPED_TRACE(name + " " + text);
		std::vector<uint8_t> decoded;
		auto it = kSupported.find(name);
		if (it != kSupported.end()) {
			EXPECT_EQ(MultibaseEncode(it->second, input), text);
			Multibase base;
			ASSERT_TRUE(MultibaseDecode(text, 1024, &decoded, &base).ok());
			EXPECT_EQ(decoded, input);
			EXPECT_EQ(base, it->second);
			checked++;
		} else if (name == "base16upper" || name == "base32upper") {
			ASSERT_TRUE(MultibaseDecode(text, 1024, &decoded).ok());
			EXPECT_EQ(decoded, input);
		} else {
			EXPECT_FALSE(MultibaseDecode(text, 1024, &decoded).ok()); // unsupported bases are refused
		}
	}
	EXPECT_EQ(checked, 4);
}

INSTANTIATE_TEST_SUITE_P(Tables, s5_multibase_table,
                         ::testing::Values("multibase_basic.csv", "multibase_leading_zero.csv",
                                           "multibase_two_leading_zeros.csv"));

TEST(s5_multibase, CaseInsensitiveBase16AndBase32) {
	MultibaseTable t = LoadTable("multibase_case_insensitivity.csv");
	for (const char *name : {"base16", "base16upper", "base32", "base32upper"}) {
		std::vector<uint8_t> decoded;
		ASSERT_TRUE(MultibaseDecode(t.rows.at(name), 1024, &decoded).ok()) << name;
		EXPECT_EQ(decoded, test::Bytes(t.input)) << name;
	}
}

TEST(s5_multibase, TableListsOurPrefixes) {
	std::string table = test::ReadFileOrThrow(test::TestDataPath("multibase/multibase_table.csv"));
	for (const char *row : {"U+0066,     f,          base16,", "U+0062,     b,          base32,",
	                        "U+007a,     z,          base58btc,", "U+0075,     u,          base64url,"})
		EXPECT_NE(table.find(row), std::string::npos) << row;
}

TEST(s5_multibase, StrictDecoding) {
	std::vector<uint8_t> out;
	const char *bad[] = {
	    "",                    // empty
	    "x1234",               // unknown prefix
	    "f123",                // odd hex
	    "f12 4",               // whitespace
	    "fzz",                 // alphabet
	    "b1",                  // base32 digit outside alphabet
	    "ba",                  // base32 length 1 is impossible
	    "baaa",                // base32 length 3 is impossible
	    "bpfsxgidnmfxgsibb=",  // padding
	    "bab4wk4zanvqw42jaef", // non-zero trailing bits
	    "z0OIl",               // base58 excluded characters
	    "u+/",                 // base64 (not url) alphabet
	    "uYQ==",               // padding
	    "uYR",                 // non-zero trailing bits
	    "uA",                  // base64 length 1 is impossible
	    "MeWVzIG1hbmkgIQ==",   // base64pad is not accepted
	};
	for (const char *text : bad)
		EXPECT_FALSE(MultibaseDecode(text, 1024, &out).ok()) << text;
	// Length limit is enforced before and after decoding.
	EXPECT_FALSE(MultibaseDecode("f" + std::string(100, 'a'), 10, &out).ok());
	EXPECT_FALSE(MultibaseDecode("z" + std::string(10000, '2'), 64, &out).ok());
	EXPECT_TRUE(MultibaseDecode("f", 10, &out).ok());
	EXPECT_TRUE(out.empty());
}

TEST(s5_multibase, RandomRoundTrip) {
	std::mt19937 rng(7);
	for (int n = 0; n < 200; n++) {
		std::vector<uint8_t> data(rng() % 64);
		for (auto &b : data)
			b = static_cast<uint8_t>(rng() % 4 == 0 ? 0 : rng());
		for (Multibase base : {Multibase::Base16, Multibase::Base32, Multibase::Base58btc, Multibase::Base64url}) {
			std::vector<uint8_t> back;
			ASSERT_TRUE(MultibaseDecode(MultibaseEncode(base, data), 1024, &back).ok());
			EXPECT_EQ(back, data);
		}
	}
}

std::vector<uint8_t> FromHex(const std::string &hex) {
	std::vector<uint8_t> out;
	EXPECT_TRUE(HexDecode(hex, &out).ok()) << hex;
	return out;
}

TEST(s5_cid, V1FromContent) {
	test::Json doc = test::LoadJson("s5_cid_vectors.json");
	for (const test::Json &c : doc["v1_from_content"].items) {
		BlobId id = BlobIdOf(test::Bytes(c["content_utf8"].text));
		EXPECT_EQ(id.size, c["size"].U64());
		EXPECT_EQ(HexEncode(id.hash), c["blake3_hex"].text);
		std::vector<uint8_t> bytes = EncodeBlobCidBytes(id);
		EXPECT_EQ(MultibaseEncode(Multibase::Base16, bytes), c["base16"].text);
		EXPECT_EQ(BlobCidText(id), c["base32"].text);
		EXPECT_EQ(MultibaseEncode(Multibase::Base58btc, bytes), c["base58"].text);
		EXPECT_EQ(MultibaseEncode(Multibase::Base64url, bytes), c["base64url"].text);
		EXPECT_EQ(BlobCidText(id).substr(0, 5), "blobb");
		for (const char *form : {"base16", "base32", "base58", "base64url"}) {
			BlobId parsed;
			ASSERT_TRUE(ParseCid(c[form].text, &parsed).ok()) << form;
			EXPECT_EQ(parsed, id) << form;
		}
	}
}

TEST(s5_cid, V1FromHash) {
	test::Json doc = test::LoadJson("s5_cid_vectors.json");
	for (const test::Json &c : doc["v1_from_hash"].items) {
		std::vector<uint8_t> mh = FromHex(c["multihash_hex"].text);
		ASSERT_EQ(mh.size(), 33u);
		ASSERT_EQ(mh[0], kMultihashBlake3);
		BlobId id;
		std::copy(mh.begin() + 1, mh.end(), id.hash.begin());
		id.size = c["size"].U64();
		EXPECT_EQ(BlobCidText(id), c["base32"].text);
		std::vector<uint8_t> bytes = EncodeBlobCidBytes(id);
		EXPECT_EQ(MultibaseEncode(Multibase::Base16, bytes), c["base16"].text);
		EXPECT_EQ(MultibaseEncode(Multibase::Base58btc, bytes), c["base58"].text);
		EXPECT_EQ(MultibaseEncode(Multibase::Base64url, bytes), c["base64url"].text);
		for (const char *form : {"base16", "base32", "base58", "base64url"}) {
			BlobId parsed;
			ASSERT_TRUE(ParseCid(c[form].text, &parsed).ok()) << form;
			EXPECT_EQ(parsed, id);
		}
	}
}

// The vectors are 0x5b 0x82 + 32 zero bytes + size (no hash-type byte); check our size field against them.
TEST(s5_cid, SizeEncoding) {
	test::Json doc = test::LoadJson("s5_cid_vectors.json");
	for (const test::Json &c : doc["size_encoding"]["cases"].items) {
		const uint64_t size = c["size"].U64();
		std::vector<uint8_t> bytes;
		ASSERT_TRUE(MultibaseDecode(c["base32"].text, 64, &bytes).ok());
		ASSERT_GE(bytes.size(), 34u);
		std::vector<uint8_t> cid = {kCidTypeBlob, kBlobTypePlaintext, kMultihashBlake3};
		cid.insert(cid.end(), bytes.begin() + 2, bytes.end());
		BlobId parsed;
		ASSERT_TRUE(ParseCidBytes(cid, &parsed).ok()) << size;
		EXPECT_EQ(parsed.size, size);
		if (size > 0) {
			// Our encoder writes the same trimmed size bytes.
			BlobId id;
			id.size = size;
			std::vector<uint8_t> ours = EncodeBlobCidBytes(id);
			EXPECT_TRUE(std::equal(ours.begin() + 35, ours.end(), bytes.begin() + 34, bytes.end())) << size;
		}
	}
}

TEST(s5_cid, LegacyRaw) {
	test::Json doc = test::LoadJson("s5_cid_vectors.json");
	const auto &cases = doc["legacy_raw"].items;
	ASSERT_EQ(cases.size(), 2u);
	{
		const test::Json &c = cases[0];
		BlobId id;
		ASSERT_TRUE(ParseCid(c["input"].text, &id).ok());
		EXPECT_EQ(HexEncode(id.hash), c["blake3_hex"].text);
		EXPECT_EQ(id.size, c["size"].U64());
		std::vector<uint8_t> raw = EncodeRawCidBytes(id);
		EXPECT_EQ(raw[0], 0x26);
		EXPECT_EQ(raw[1], 0x1f);
		EXPECT_EQ(MultibaseEncode(Multibase::Base32, raw), c["base32"].text);
		EXPECT_EQ(RawCidText(id), c["base58"].text);
		EXPECT_EQ(MultibaseEncode(Multibase::Base64url, raw), c["input"].text);
		EXPECT_EQ(BlobCidText(id), c["as_v1_base32"].text);
		std::string converted;
		ASSERT_TRUE(CidToBlobCidText(c["input"].text, &converted).ok());
		EXPECT_EQ(converted, c["as_v1_base32"].text);
		ASSERT_TRUE(CidToRawCidText(c["as_v1_base32"].text, &converted).ok());
		EXPECT_EQ(converted, c["base58"].text);
	}
	{
		const test::Json &c = cases[1];
		std::vector<uint8_t> raw = FromHex(c["bytes_hex"].text);
		BlobId id;
		ASSERT_TRUE(ParseCidBytes(raw, &id).ok());
		EXPECT_EQ(id.size, c["size"].U64());
		EXPECT_EQ(EncodeRawCidBytes(id), raw);
		for (const char *form : {"base16", "base32", "base58", "base64url"}) {
			BlobId parsed;
			ASSERT_TRUE(ParseCid(c[form].text, &parsed).ok()) << form;
			EXPECT_EQ(parsed, id);
		}
		EXPECT_EQ(RawCidText(id), c["base58"].text);
	}
}

TEST(s5_cid, RejectsMalformed) {
	BlobId good = BlobIdOf(test::Bytes("Hello, world!"));
	std::vector<uint8_t> v1 = EncodeBlobCidBytes(good);
	BlobId out;
	auto bad_bytes = [&](std::vector<uint8_t> b) { return !ParseCidBytes(b, &out).ok(); };
	EXPECT_TRUE(bad_bytes({}));
	EXPECT_TRUE(bad_bytes({0x5b, 0x82}));
	{
		auto b = v1;
		b[1] = 0x83; // encrypted blob type: not supported here
		EXPECT_TRUE(bad_bytes(b));
	}
	{
		auto b = v1;
		b[2] = 0x12; // sha2-256
		EXPECT_TRUE(bad_bytes(b));
	}
	{
		auto b = v1;
		b.resize(20); // truncated hash
		EXPECT_TRUE(bad_bytes(b));
	}
	{
		auto b = v1;
		b.push_back(0); // trailing zero byte in the size (non-canonical)
		EXPECT_TRUE(bad_bytes(b));
	}
	{
		auto b = v1;
		b.insert(b.end(), {1, 2, 3, 4, 5, 6, 7, 8}); // 9-byte size
		EXPECT_TRUE(bad_bytes(b));
	}
	{
		auto b = v1;
		b[0] = 0x26; // raw prefix with blob layout
		EXPECT_TRUE(bad_bytes(b));
	}
	for (const std::string &text :
	     {std::string(""), std::string("blobb"),
	      std::string("Xblobb53pfycyq6lwes6ogtnjpmhsc75nucnizzye34dyu2cmnz7s7n6mnbu"),
	      std::string("blobb53pfycyq6lwes6ogtnjpmhsc75nucnizzye34dyu2cmnz7s7n6mnbu "),
	      std::string("blobb53pfycyq6lwes6ogtnjpmhsc75nucnizzye34dyu2cmnz7s7n6mnb"), // truncated
	      std::string("../../etc/passwd"), std::string(200, 'z')})
		EXPECT_FALSE(ParseCid(text, &out).ok()) << text;
	ASSERT_TRUE(ParseCid(BlobCidText(good), &out).ok());
	EXPECT_EQ(out, good);
}

TEST(s5_cid, SizeBoundaries) {
	for (uint64_t size : {uint64_t{1}, uint64_t{255}, uint64_t{256}, uint64_t{65535}, uint64_t{65536},
	                      uint64_t{1} << 32, ~uint64_t{0}}) {
		BlobId id;
		id.hash.fill(0xab);
		id.size = size;
		BlobId back;
		ASSERT_TRUE(ParseCid(BlobCidText(id), &back).ok());
		EXPECT_EQ(back, id);
		ASSERT_TRUE(ParseCid(RawCidText(id), &back).ok());
		EXPECT_EQ(back, id);
	}
}

} // namespace
} // namespace s5v::s5
