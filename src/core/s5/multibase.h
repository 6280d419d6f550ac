// Multibase text encodings used by S5 identifiers: base16 (f), base32 (b), base58btc (z), base64url (u).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace s5v::s5 {

enum class Multibase : unsigned char {
	Base16,    // 'f', lower-case hex
	Base32,    // 'b', RFC 4648 lower case, no padding
	Base58btc, // 'z', Bitcoin alphabet
	Base64url, // 'u', RFC 4648 URL alphabet, no padding
};

// Encodes bytes with the multibase prefix character.
std::string MultibaseEncode(Multibase base, std::span<const uint8_t> data);

// Decodes untrusted multibase text. Strict: known prefix only ('f', 'F', 'b', 'B', 'z', 'u'), no padding, no
// whitespace, valid length for the base, unused trailing bits must be zero, decoded size at most max_decoded.
// Base16 and base32 digits are case-insensitive (as the multibase specification says).
[[nodiscard]] Status MultibaseDecode(std::string_view text, size_t max_decoded, std::vector<uint8_t> *out,
                                     Multibase *base_out = nullptr);

// Lower-case hex without prefix (for file names, logs and tests).
std::string HexEncode(std::span<const uint8_t> data);
[[nodiscard]] Status HexDecode(std::string_view hex, std::vector<uint8_t> *out);

} // namespace s5v::s5
