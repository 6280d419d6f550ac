// Multibase encoders and strict decoders (no allocation beyond the output, linear time except base58).
#include "core/s5/multibase.h"

#include <array>

namespace s5v::s5 {

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";
constexpr char kBase32Alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
constexpr char kBase58Alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
constexpr char kBase64UrlAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Reverse lookup tables: 0xff marks a character outside the alphabet.
struct DecodeTables {
	std::array<uint8_t, 256> hex{}, base32{}, base58{}, base64url{};
	constexpr DecodeTables() {
		for (auto *t : {&hex, &base32, &base58, &base64url})
			t->fill(0xff);
		for (int i = 0; i < 16; i++) {
			hex[static_cast<unsigned char>(kHexDigits[i])] = static_cast<uint8_t>(i);
			if (i >= 10)
				hex[static_cast<unsigned char>(kHexDigits[i] - 'a' + 'A')] = static_cast<uint8_t>(i);
		}
		for (int i = 0; i < 32; i++) {
			char c = kBase32Alphabet[i];
			base32[static_cast<unsigned char>(c)] = static_cast<uint8_t>(i);
			if (c >= 'a' && c <= 'z')
				base32[static_cast<unsigned char>(c - 'a' + 'A')] = static_cast<uint8_t>(i);
		}
		for (int i = 0; i < 58; i++)
			base58[static_cast<unsigned char>(kBase58Alphabet[i])] = static_cast<uint8_t>(i);
		for (int i = 0; i < 64; i++)
			base64url[static_cast<unsigned char>(kBase64UrlAlphabet[i])] = static_cast<uint8_t>(i);
	}
};
constexpr DecodeTables kTables;

std::string EncodeBase32(std::span<const uint8_t> data) {
	std::string out;
	out.reserve((data.size() * 8 + 4) / 5);
	uint32_t buffer = 0;
	int bits = 0;
	for (uint8_t b : data) {
		buffer = (buffer << 8) | b;
		bits += 8;
		while (bits >= 5) {
			out.push_back(kBase32Alphabet[(buffer >> (bits - 5)) & 31]);
			bits -= 5;
		}
		buffer &= (1u << bits) - 1;
	}
	if (bits > 0)
		out.push_back(kBase32Alphabet[(buffer << (5 - bits)) & 31]);
	return out;
}

std::string EncodeBase64Url(std::span<const uint8_t> data) {
	std::string out;
	out.reserve((data.size() * 4 + 2) / 3);
	uint32_t buffer = 0;
	int bits = 0;
	for (uint8_t b : data) {
		buffer = (buffer << 8) | b;
		bits += 8;
		while (bits >= 6) {
			out.push_back(kBase64UrlAlphabet[(buffer >> (bits - 6)) & 63]);
			bits -= 6;
		}
		buffer &= (1u << bits) - 1;
	}
	if (bits > 0)
		out.push_back(kBase64UrlAlphabet[(buffer << (6 - bits)) & 63]);
	return out;
}

// Base58 by repeated division of a base-256 number; quadratic, callers bound the length.
std::string EncodeBase58(std::span<const uint8_t> data) {
	size_t zeros = 0;
	while (zeros < data.size() && data[zeros] == 0)
		zeros++;
	// log(256)/log(58) < 1.37
	std::vector<uint8_t> digits((data.size() - zeros) * 137 / 100 + 1, 0);
	size_t used = 0;
	for (size_t i = zeros; i < data.size(); i++) {
		uint32_t carry = data[i];
		size_t j = 0;
		for (; j < used || carry != 0; j++) {
			carry += static_cast<uint32_t>(digits[j]) * 256;
			digits[j] = static_cast<uint8_t>(carry % 58);
			carry /= 58;
		}
		used = j;
	}
	std::string out(zeros, '1');
	for (size_t i = used; i > 0; i--)
		out.push_back(kBase58Alphabet[digits[i - 1]]);
	return out;
}

// Generic bit-packing decoder for base32 and base64url (no padding).
Status DecodeBits(std::string_view digits, const std::array<uint8_t, 256> &table, int bits_per_digit,
                  std::vector<uint8_t> *out) {
	const size_t total_bits = digits.size() * static_cast<size_t>(bits_per_digit);
	const size_t spare = total_bits % 8;
	if (spare >= static_cast<size_t>(bits_per_digit))
		return Status::InvalidInput("multibase: invalid length");
	out->clear();
	out->reserve(total_bits / 8);
	uint32_t buffer = 0;
	int bits = 0;
	for (char c : digits) {
		uint8_t v = table[static_cast<unsigned char>(c)];
		if (v == 0xff)
			return Status::InvalidInput("multibase: invalid character");
		buffer = (buffer << bits_per_digit) | v;
		bits += bits_per_digit;
		if (bits >= 8) {
			out->push_back(static_cast<uint8_t>(buffer >> (bits - 8)));
			bits -= 8;
			buffer &= (1u << bits) - 1;
		}
	}
	if (buffer != 0)
		return Status::InvalidInput("multibase: non-zero trailing bits");
	return Status::Ok();
}

Status DecodeBase58(std::string_view digits, std::vector<uint8_t> *out) {
	size_t ones = 0;
	while (ones < digits.size() && digits[ones] == '1')
		ones++;
	// log(58)/log(256) < 0.733
	std::vector<uint8_t> bytes((digits.size() - ones) * 733 / 1000 + 1, 0);
	size_t used = 0;
	for (size_t i = ones; i < digits.size(); i++) {
		uint8_t v = kTables.base58[static_cast<unsigned char>(digits[i])];
		if (v == 0xff)
			return Status::InvalidInput("multibase: invalid base58 character");
		uint32_t carry = v;
		size_t j = 0;
		for (; j < used || carry != 0; j++) {
			carry += static_cast<uint32_t>(bytes[j]) * 58;
			bytes[j] = static_cast<uint8_t>(carry & 0xff);
			carry >>= 8;
		}
		used = j;
	}
	out->assign(ones, 0);
	for (size_t i = used; i > 0; i--)
		out->push_back(bytes[i - 1]);
	return Status::Ok();
}

} // namespace

std::string HexEncode(std::span<const uint8_t> data) {
	std::string out;
	out.reserve(data.size() * 2);
	for (uint8_t b : data) {
		out.push_back(kHexDigits[b >> 4]);
		out.push_back(kHexDigits[b & 15]);
	}
	return out;
}

Status HexDecode(std::string_view hex, std::vector<uint8_t> *out) {
	if (hex.size() % 2 != 0)
		return Status::InvalidInput("hex: odd length");
	out->clear();
	out->reserve(hex.size() / 2);
	for (size_t i = 0; i < hex.size(); i += 2) {
		uint8_t hi = kTables.hex[static_cast<unsigned char>(hex[i])];
		uint8_t lo = kTables.hex[static_cast<unsigned char>(hex[i + 1])];
		if (hi == 0xff || lo == 0xff)
			return Status::InvalidInput("hex: invalid character");
		out->push_back(static_cast<uint8_t>(hi << 4 | lo));
	}
	return Status::Ok();
}

std::string MultibaseEncode(Multibase base, std::span<const uint8_t> data) {
	// Prefix appended to, not concatenated with operator+ (GCC 12 warns falsely about the latter at -O3).
	std::string out;
	switch (base) {
	case Multibase::Base16:
		out.push_back('f');
		out.append(HexEncode(data));
		break;
	case Multibase::Base32:
		out.push_back('b');
		out.append(EncodeBase32(data));
		break;
	case Multibase::Base58btc:
		out.push_back('z');
		out.append(EncodeBase58(data));
		break;
	case Multibase::Base64url:
		out.push_back('u');
		out.append(EncodeBase64Url(data));
		break;
	}
	return out;
}

Status MultibaseDecode(std::string_view text, size_t max_decoded, std::vector<uint8_t> *out, Multibase *base_out) {
	out->clear();
	if (text.empty())
		return Status::InvalidInput("multibase: empty text");
	// Every supported base needs at least 1.3 characters per byte; bound the work before decoding.
	if (text.size() - 1 > max_decoded * 2 + 2)
		return Status::InvalidInput("multibase: text too long");
	const std::string_view digits = text.substr(1);
	Multibase base;
	Status st;
	switch (text[0]) {
	case 'f':
	case 'F':
		base = Multibase::Base16;
		st = HexDecode(digits, out);
		break;
	case 'b':
	case 'B':
		base = Multibase::Base32;
		st = DecodeBits(digits, kTables.base32, 5, out);
		break;
	case 'z':
		base = Multibase::Base58btc;
		st = DecodeBase58(digits, out);
		break;
	case 'u':
		base = Multibase::Base64url;
		st = DecodeBits(digits, kTables.base64url, 6, out);
		break;
	default:
		return Status::InvalidInput("multibase: unsupported prefix");
	}
	if (!st.ok()) {
		out->clear();
		return st;
	}
	if (out->size() > max_decoded) {
		out->clear();
		return Status::InvalidInput("multibase: decoded value too long");
	}
	if (base_out)
		*base_out = base;
	return Status::Ok();
}

} // namespace s5v::s5
