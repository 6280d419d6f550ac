// A pull reader over libcbor's streaming decoder: one token per call, no allocation, byte strings as views.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "core/status.h"

namespace s5v::s5 {

enum class CborTokenType : unsigned char {
	UnsignedInt,     // value = the integer
	NegativeInt,     // value = n where the integer is -1 - n
	ByteString,      // bytes = the definite string
	TextString,      // bytes = the definite string (UTF-8 is not validated here)
	ByteStringStart, // indefinite byte string: chunks follow, then Break
	TextStringStart, // indefinite text string: chunks follow, then Break
	ArrayStart,      // value = number of items
	IndefArrayStart, // items follow, then Break
	MapStart,        // value = number of pairs
	IndefMapStart,   // pairs follow, then Break
	Tag,             // value = the tag; one item follows
	Float,           // number = the value (half, single and double precision all widen exactly)
	Bool,            // value = 0 or 1
	Null,
	Undefined,
	Break,
};

struct CborToken {
	CborTokenType type = CborTokenType::Null;
	uint64_t value = 0;
	double number = 0;
	int float_width = 0;    // 2, 4 or 8 bytes for Float
	size_t header_size = 0; // bytes of the item's head (initial byte + argument), excluding string content
	std::span<const uint8_t> bytes;
};

// Reads one data item header (or a whole definite string) at a time. Never reads beyond the buffer.
// Unassigned simple values and reserved encodings are errors (libcbor reports them as malformed).
class CborReader {
public:
	explicit CborReader(std::span<const uint8_t> data) noexcept : data_(data) {}

	// Next token; InvalidInput("cbor: truncated") at a premature end, InvalidInput for malformed bytes.
	[[nodiscard]] Status Next(CborToken *token) noexcept;
	size_t offset() const noexcept { return offset_; }
	bool at_end() const noexcept { return offset_ == data_.size(); }

private:
	std::span<const uint8_t> data_;
	size_t offset_ = 0;
};

// Small writer over libcbor's encoding functions (definite lengths, shortest integer forms).
class CborWriter {
public:
	explicit CborWriter(std::span<uint8_t> out) noexcept : out_(out) {}
	bool Uint(uint64_t v) noexcept;
	bool MapStart(size_t pairs) noexcept;
	bool ArrayStart(size_t items) noexcept;
	bool Bytes(std::span<const uint8_t> b) noexcept;
	// Reserves a byte string of n bytes and sets *dst to where its content goes; false on overflow.
	bool BytesInPlace(size_t n, std::span<uint8_t> *dst) noexcept;
	bool Text(std::string_view s) noexcept;
	size_t size() const noexcept { return used_; }

private:
	std::span<uint8_t> out_;
	size_t used_ = 0;
};

// Bytes a header for an argument of value v takes (1, 2, 3, 5 or 9).
size_t CborHeaderSize(uint64_t v) noexcept;

} // namespace s5v::s5
