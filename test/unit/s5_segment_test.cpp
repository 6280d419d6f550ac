// The CBOR reading layer (RFC 8949 appendix A) and the cold-segment format: round trips and hostile input.
#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <random>

#include "core/s5/cbor.h"
#include "core/s5/multibase.h"
#include "core/s5/segment.h"
#include "s5_test_util.h"

namespace s5v::s5 {
namespace {

// ---- CBOR reading layer: a diagnostic-notation printer over CborReader --------------------------------------

std::string FloatText(double d) {
	if (std::isnan(d))
		return "NaN";
	if (std::isinf(d))
		return d > 0 ? "Infinity" : "-Infinity";
	char buf[64];
	auto r = std::to_chars(buf, buf + sizeof(buf), d);
	std::string s(buf, r.ptr);
	if (s.find_first_of(".en") == std::string::npos)
		s += ".0";
	return s;
}

std::string Quote(std::string_view s) {
	std::string out = "\"";
	for (char c : s) {
		if (c == '"' || c == '\\')
			out.push_back('\\');
		out.push_back(c);
	}
	return out + "\"";
}

std::string U128Text(unsigned __int128 v) {
	if (v == 0)
		return "0";
	std::string s;
	while (v) {
		s.insert(s.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
		v /= 10;
	}
	return s;
}

// Renders one item; bignum tags 2/3 are shown as their integer value (as the JSON vectors do).
Status Diag(CborReader &r, std::string *out, int depth = 0) {
	if (depth > 32)
		return Status::InvalidInput("too deep");
	CborToken t;
	S5V_RETURN_IF_ERROR(r.Next(&t));
	auto items = [&](uint64_t n, bool indef, bool pairs, const char *open, const char *close) -> Status {
		std::string s = open; // the vectors show indefinite containers like definite ones
		for (uint64_t i = 0;; i++) {
			if (!indef && i == n * (pairs ? 2 : 1))
				break;
			CborReader save = r;
			CborToken peek;
			S5V_RETURN_IF_ERROR(r.Next(&peek));
			if (peek.type == CborTokenType::Break) {
				if (!indef)
					return Status::InvalidInput("unexpected break");
				break;
			}
			r = save;
			if (i > 0)
				s += pairs && i % 2 == 1 ? ": " : ", ";
			std::string item;
			S5V_RETURN_IF_ERROR(Diag(r, &item, depth + 1));
			s += item;
		}
		*out = s + close;
		return Status::Ok();
	};
	switch (t.type) {
	case CborTokenType::UnsignedInt:
		*out = std::to_string(t.value);
		return Status::Ok();
	case CborTokenType::NegativeInt:
		*out = "-" + U128Text(static_cast<unsigned __int128>(t.value) + 1);
		return Status::Ok();
	case CborTokenType::ByteString:
		*out = "h'" + HexEncode(t.bytes) + "'";
		return Status::Ok();
	case CborTokenType::TextString:
		*out = Quote({reinterpret_cast<const char *>(t.bytes.data()), t.bytes.size()});
		return Status::Ok();
	case CborTokenType::ByteStringStart:
	case CborTokenType::TextStringStart: {
		// Indefinite strings: text is shown concatenated, bytes as chunks.
		std::string text, chunks;
		for (int i = 0;; i++) {
			CborToken c;
			S5V_RETURN_IF_ERROR(r.Next(&c));
			if (c.type == CborTokenType::Break)
				break;
			if (c.type !=
			    (t.type == CborTokenType::ByteStringStart ? CborTokenType::ByteString : CborTokenType::TextString))
				return Status::InvalidInput("bad chunk");
			text.append(reinterpret_cast<const char *>(c.bytes.data()), c.bytes.size());
			chunks += (i ? ", h'" : "h'") + HexEncode(c.bytes) + "'";
		}
		*out = t.type == CborTokenType::TextStringStart ? Quote(text) : "(_ " + chunks + ")";
		return Status::Ok();
	}
	case CborTokenType::ArrayStart:
		return items(t.value, false, false, "[", "]");
	case CborTokenType::IndefArrayStart:
		return items(0, true, false, "[", "]");
	case CborTokenType::MapStart:
		return items(t.value, false, true, "{", "}");
	case CborTokenType::IndefMapStart:
		return items(0, true, true, "{", "}");
	case CborTokenType::Tag: {
		if (t.value == 2 || t.value == 3) {
			CborToken b;
			S5V_RETURN_IF_ERROR(r.Next(&b));
			if (b.type != CborTokenType::ByteString || b.bytes.size() > 15)
				return Status::InvalidInput("unsupported bignum");
			unsigned __int128 v = 0;
			for (uint8_t x : b.bytes)
				v = (v << 8) | x;
			*out = t.value == 2 ? U128Text(v) : "-" + U128Text(v + 1);
			return Status::Ok();
		}
		std::string inner;
		S5V_RETURN_IF_ERROR(Diag(r, &inner, depth + 1));
		*out = std::to_string(t.value) + "(" + inner + ")";
		return Status::Ok();
	}
	case CborTokenType::Float:
		*out = FloatText(t.number);
		return Status::Ok();
	case CborTokenType::Bool:
		*out = t.value ? "true" : "false";
		return Status::Ok();
	case CborTokenType::Null:
		*out = "null";
		return Status::Ok();
	case CborTokenType::Undefined:
		*out = "undefined";
		return Status::Ok();
	case CborTokenType::Break:
		return Status::InvalidInput("unexpected break");
	}
	return Status::Internal("unknown token");
}

// The JSON "decoded" value in the same notation.
std::string JsonDiag(const test::Json &j) {
	switch (j.type) {
	case test::Json::Null:
		return "null";
	case test::Json::Bool:
		return j.boolean ? "true" : "false";
	case test::Json::Number:
		return j.IsInteger() ? j.text : FloatText(std::strtod(j.text.c_str(), nullptr));
	case test::Json::String:
		return Quote(j.text);
	case test::Json::Array: {
		std::string s = "[";
		for (size_t i = 0; i < j.items.size(); i++)
			s += (i ? ", " : "") + JsonDiag(j.items[i]);
		return s + "]";
	}
	case test::Json::Object: {
		std::string s = "{";
		for (size_t i = 0; i < j.members.size(); i++)
			s += (i ? ", " : "") + Quote(j.members[i].first) + ": " + JsonDiag(j.members[i].second);
		return s + "}";
	}
	}
	return "?";
}

TEST(s5_cbor, AppendixA) {
	test::Json cases = test::LoadJson("cbor_appendix_a.json");
	int decoded = 0, rejected_simple = 0;
	for (const test::Json &c : cases.items) {
		const std::string hex = c["hex"].text;
		SCOPED_TRACE(hex);
		std::vector<uint8_t> bytes;
		ASSERT_TRUE(HexDecode(hex, &bytes).ok());
		CborReader r(bytes);
		std::string got;
		Status st = Diag(r, &got);
		const test::Json *diag = c.Find("diagnostic");
		// libcbor treats unassigned simple values as malformed; our format never uses them.
		if (diag && diag->text.rfind("simple(", 0) == 0) {
			EXPECT_FALSE(st.ok());
			rejected_simple++;
			continue;
		}
		ASSERT_TRUE(st.ok()) << st.message();
		EXPECT_TRUE(r.at_end());
		if (diag)
			EXPECT_EQ(got, diag->text);
		else
			EXPECT_EQ(got, JsonDiag(c["decoded"]));
		decoded++;
		// Every proper prefix is reported as truncated or malformed, never read past the end.
		for (size_t n = 0; n < bytes.size(); n++) {
			std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(n));
			CborReader pr(prefix);
			std::string ignored;
			EXPECT_FALSE(Diag(pr, &ignored).ok()) << "prefix " << n;
		}
	}
	EXPECT_EQ(rejected_simple, 3);
	EXPECT_GE(decoded, 75);
}

TEST(s5_cbor, HeaderSizes) {
	for (uint64_t v : {uint64_t{0}, uint64_t{23}, uint64_t{24}, uint64_t{255}, uint64_t{256}, uint64_t{65535},
	                   uint64_t{65536}, uint64_t{0xffffffff}, uint64_t{0x100000000}, ~uint64_t{0}}) {
		std::vector<uint8_t> buf(16);
		CborWriter w(buf);
		ASSERT_TRUE(w.Uint(v));
		EXPECT_EQ(w.size(), CborHeaderSize(v));
		CborReader r(std::span<const uint8_t>(buf.data(), w.size()));
		CborToken t;
		ASSERT_TRUE(r.Next(&t).ok());
		EXPECT_EQ(t.value, v);
		EXPECT_EQ(t.header_size, w.size());
	}
	std::vector<uint8_t> small(2);
	CborWriter w(small);
	EXPECT_FALSE(w.Uint(1000));
	EXPECT_FALSE(w.Text("abc"));
}

// ---- Segment format -----------------------------------------------------------------------------------------

struct Sample {
	SegmentHeader header;
	std::vector<float> vectors;
	std::vector<uint64_t> ids;
};

Sample MakeSample(uint32_t dims, uint64_t rows, uint32_t seed = 1) {
	Sample s;
	s.header.dims = dims;
	s.header.metric = SegmentMetric::Cosine;
	for (int i = 0; i < 16; i++)
		s.header.index_id[i] = static_cast<uint8_t>(0xa0 + i);
	s.header.list_no = 1234;
	s.header.segment_no = 7;
	s.header.row_count = rows;
	std::mt19937 rng(seed);
	std::normal_distribution<float> dist;
	s.vectors.resize(rows * dims);
	for (auto &f : s.vectors)
		f = dist(rng);
	for (uint64_t i = 0; i < rows; i++)
		s.ids.push_back((i << 16) | (rng() & 0xffff));
	return s;
}

std::vector<uint8_t> Encode(const Sample &s, const SegmentLimits &limits = {}) {
	std::vector<uint8_t> out;
	Status st = EncodeSegment(s.header, s.vectors, s.ids, limits, &out);
	EXPECT_TRUE(st.ok()) << st.message();
	return out;
}

TEST(s5_segment, RoundTrip) {
	for (auto [dims, rows] : {std::pair<uint32_t, uint64_t>{1, 1}, {3, 0}, {8, 100}, {768, 37}, {16000, 2}}) {
		Sample s = MakeSample(dims, rows);
		std::vector<uint8_t> doc = Encode(s);
		size_t predicted;
		ASSERT_TRUE(EncodedSegmentSize(s.header, {}, &predicted).ok());
		EXPECT_EQ(doc.size(), predicted);
		SegmentView v;
		Status st = DecodeSegment(doc, {}, &v);
		ASSERT_TRUE(st.ok()) << st.message();
		EXPECT_EQ(v.header, s.header);
		std::vector<float> back(rows * dims);
		v.CopyVectors(back);
		EXPECT_EQ(back, s.vectors);
		for (uint64_t i = 0; i < rows; i++) {
			EXPECT_EQ(v.RowId(i), s.ids[i]);
			EXPECT_EQ(v.Component(i, dims - 1), s.vectors[i * dims + dims - 1]);
		}
		EXPECT_TRUE(CheckSegmentIdentity(v.header, s.header.index_id, 1234, 7, dims, SegmentMetric::Cosine).ok());
		// Deterministic: encoding twice gives identical bytes (same CID).
		EXPECT_EQ(Encode(s), doc);
	}
}

TEST(s5_segment, KnownLayout) {
	Sample s = MakeSample(2, 1);
	s.vectors = {1.0f, -2.0f};
	s.ids = {0x0102030405060708ull};
	std::vector<uint8_t> doc = Encode(s);
	// a ab 00 70 "s5vector-segment" 01 01 02 02 03 03 04 50 <16> 05 19 04d2 06 07 07 01 08 48 <8> 09 48 <8>
	std::string hex = HexEncode(doc);
	EXPECT_EQ(hex.substr(0, 6), "aa0070");
	EXPECT_NE(hex.find("0101020203030450a0a1a2a3a4a5a6a7a8a9aaabacadaeaf051904d2060707010848"), std::string::npos);
	EXPECT_EQ(hex.substr(hex.size() - 38), "48"
	                                       "0000803f000000c0"
	                                       "0948"
	                                       "0807060504030201");
}

TEST(s5_segment, IdentityMismatch) {
	Sample s = MakeSample(4, 3);
	std::vector<uint8_t> doc = Encode(s);
	SegmentView v;
	ASSERT_TRUE(DecodeSegment(doc, {}, &v).ok());
	std::array<uint8_t, 16> other = s.header.index_id;
	other[15] ^= 1;
	EXPECT_EQ(CheckSegmentIdentity(v.header, other, 1234, 7, 4, SegmentMetric::Cosine).code(), StatusCode::Corrupt);
	EXPECT_EQ(CheckSegmentIdentity(v.header, s.header.index_id, 1235, 7, 4, SegmentMetric::Cosine).code(),
	          StatusCode::Corrupt);
	EXPECT_EQ(CheckSegmentIdentity(v.header, s.header.index_id, 1234, 8, 4, SegmentMetric::Cosine).code(),
	          StatusCode::Corrupt);
	EXPECT_EQ(CheckSegmentIdentity(v.header, s.header.index_id, 1234, 7, 5, SegmentMetric::Cosine).code(),
	          StatusCode::Corrupt);
	EXPECT_EQ(CheckSegmentIdentity(v.header, s.header.index_id, 1234, 7, 4, SegmentMetric::L2).code(),
	          StatusCode::Corrupt);
}

TEST(s5_segment, EncoderRejectsBadInput) {
	Sample s = MakeSample(4, 3);
	std::vector<uint8_t> out;
	auto enc = [&](const Sample &x, const SegmentLimits &l = {}) {
		return EncodeSegment(x.header, x.vectors, x.ids, l, &out).code();
	};
	{
		Sample b = s;
		b.vectors.pop_back();
		EXPECT_EQ(enc(b), StatusCode::InvalidInput);
	}
	{
		Sample b = s;
		b.ids.pop_back();
		EXPECT_EQ(enc(b), StatusCode::InvalidInput);
	}
	{
		Sample b = s;
		b.vectors[5] = std::nanf("");
		EXPECT_EQ(enc(b), StatusCode::InvalidInput);
		b.vectors[5] = INFINITY;
		EXPECT_EQ(enc(b), StatusCode::InvalidInput);
	}
	{
		Sample b = s;
		b.header.dims = 0;
		b.vectors.clear();
		EXPECT_EQ(enc(b), StatusCode::InvalidInput);
	}
	{
		Sample b = s;
		b.header.metric = static_cast<SegmentMetric>(9);
		EXPECT_EQ(enc(b), StatusCode::InvalidInput);
	}
	SegmentLimits tight;
	tight.max_dims = 3;
	EXPECT_EQ(enc(s, tight), StatusCode::LimitExceeded);
	tight = {};
	tight.max_rows = 2;
	EXPECT_EQ(enc(s, tight), StatusCode::LimitExceeded);
	tight = {};
	tight.max_total_bytes = 100;
	EXPECT_EQ(enc(s, tight), StatusCode::LimitExceeded);
}

// Builds a document by hand from hex pieces, to craft hostile variants.
std::vector<uint8_t> H(const std::string &hex) {
	std::vector<uint8_t> out;
	EXPECT_TRUE(HexDecode(hex, &out).ok()) << hex;
	return out;
}

TEST(s5_segment, DecoderRejectsHostileInput) {
	Sample s = MakeSample(2, 1);
	s.vectors = {1.0f, -2.0f};
	s.ids = {0x0102030405060708ull};
	const std::string good = HexEncode(Encode(s));
	SegmentView v;
	ASSERT_TRUE(DecodeSegment(H(good), {}, &v).ok());
	const std::string magic = "70" + HexEncode(test::Bytes("s5vector-segment"));
	const std::string tail = "0848"
	                         "0000803f000000c0"
	                         "0948"
	                         "0807060504030201";
	const std::string mid = "0101020203030450a0a1a2a3a4a5a6a7a8a9aaabacadaeaf051904d20607070108";
	ASSERT_EQ("aa00" + magic + mid.substr(0, mid.size() - 2) + tail, good);

	auto code = [&](const std::string &hex) {
		SegmentView out;
		return DecodeSegment(H(hex), {}, &out).code();
	};
	const std::string body = "00" + magic + mid.substr(0, mid.size() - 2) + tail;
	EXPECT_EQ(code("aa" + body), StatusCode::Ok);
	EXPECT_EQ(code(""), StatusCode::Corrupt);
	EXPECT_EQ(code("aa" + body + "00"), StatusCode::Corrupt);                        // trailing byte
	EXPECT_EQ(code("ab" + body + "0a00"), StatusCode::Corrupt);                      // extra field
	EXPECT_EQ(code("a9" + body), StatusCode::Corrupt);                               // field count
	EXPECT_EQ(code("bf" + body + "ff"), StatusCode::Corrupt);                        // indefinite map
	EXPECT_EQ(code("b80a" + body), StatusCode::Corrupt);                             // non-canonical map length
	EXPECT_EQ(code("8a" + body), StatusCode::Corrupt);                               // array, not map
	EXPECT_EQ(code("d9d9f7aa" + body), StatusCode::Corrupt);                         // self-describe tag
	EXPECT_EQ(code("aa" + std::string("01") + body.substr(2)), StatusCode::Corrupt); // wrong first key
	// Wrong magic, version, metric, dims.
	EXPECT_EQ(code("aa00" + std::string("70") + HexEncode(test::Bytes("s5vector-segmenT")) +
	               mid.substr(0, mid.size() - 2) + tail),
	          StatusCode::Corrupt);
	auto replace = [&](std::string hex, const std::string &from, const std::string &to) {
		size_t p = hex.find(from);
		EXPECT_NE(p, std::string::npos) << from;
		return hex.replace(p, from.size(), to);
	};
	EXPECT_EQ(code(replace(good, "01010202", "01020202")), StatusCode::Corrupt);               // version 2
	EXPECT_EQ(code(replace(good, "01010202", "0118010202")), StatusCode::Corrupt);             // non-canonical uint
	EXPECT_EQ(code(replace(good, "0303", "0304")), StatusCode::Corrupt);                       // metric 4
	EXPECT_EQ(code(replace(good, "0303", "0300")), StatusCode::Corrupt);                       // metric 0
	EXPECT_EQ(code(replace(good, "01010202", "01010200")), StatusCode::Corrupt);               // zero dims
	EXPECT_EQ(code(replace(good, "01010202", "0101021a00010000")), StatusCode::LimitExceeded); // 65536 dims
	EXPECT_EQ(code(replace(good, "0450a0", "044fa0")), StatusCode::Corrupt);                   // 15-byte index id
	EXPECT_EQ(code(replace(good, "0450a0", "0470a0")), StatusCode::Corrupt);                   // index id as text
	EXPECT_EQ(code(replace(good, "060707010848", "060707020848")), StatusCode::Corrupt);       // rows 2, data for 1
	EXPECT_EQ(code(replace(good, "060707010848", "0607071b00000001000000000848")), StatusCode::LimitExceeded);
	EXPECT_EQ(code(replace(good, "0848", "0847")), StatusCode::Corrupt);                     // short vector data
	EXPECT_EQ(code(replace(good, "0848", "085f48")), StatusCode::Corrupt);                   // indefinite bytes
	EXPECT_EQ(code(replace(good, "0848", "085848")), StatusCode::Corrupt);                   // non-canonical length
	EXPECT_EQ(code(replace(good, "0000803f", "0000c07f")), StatusCode::Corrupt);             // NaN component
	EXPECT_EQ(code(replace(good, "0000803f", "0000807f")), StatusCode::Corrupt);             // +Inf component
	EXPECT_EQ(code(replace(good, "051904d2", "05c11904d2")), StatusCode::Corrupt);           // tagged list number
	EXPECT_EQ(code(replace(good, "051904d2", "053904d2")), StatusCode::Corrupt);             // negative list number
	EXPECT_EQ(code(replace(good, "051904d2", "051b0000000100000000")), StatusCode::Corrupt); // list no > u32
	// Huge claimed lengths never allocate or read out of bounds.
	EXPECT_EQ(code(replace(good, "0848", "085bffffffffffffffff")), StatusCode::Corrupt);
	EXPECT_EQ(code("bbffffffffffffffff"), StatusCode::Corrupt);
	SegmentLimits small;
	small.max_total_bytes = 10;
	SegmentView out;
	EXPECT_EQ(DecodeSegment(H(good), small, &out).code(), StatusCode::LimitExceeded);
}

TEST(s5_segment, TruncationsAndBitFlipsNeverCrash) {
	Sample s = MakeSample(5, 4);
	std::vector<uint8_t> doc = Encode(s);
	for (size_t n = 0; n < doc.size(); n++) {
		std::vector<uint8_t> prefix(doc.begin(), doc.begin() + static_cast<ptrdiff_t>(n));
		SegmentView v;
		EXPECT_FALSE(DecodeSegment(prefix, {}, &v).ok()) << n;
	}
	std::mt19937 rng(3);
	int accepted = 0;
	for (size_t i = 0; i < doc.size(); i++) {
		for (int bit = 0; bit < 8; bit++) {
			std::vector<uint8_t> bad = doc;
			bad[i] ^= static_cast<uint8_t>(1 << bit);
			SegmentView v;
			Status st = DecodeSegment(bad, {}, &v);
			if (st.ok()) {
				// Only payload bytes may flip without detection here (the CID catches those on download).
				accepted++;
				EXPECT_EQ(v.header.dims * v.header.row_count, 20u);
			}
		}
	}
	EXPECT_GT(accepted, 0);
}

} // namespace
} // namespace s5v::s5
