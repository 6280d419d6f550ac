// BLAKE3 hashing for S5 blob identifiers: a thin wrapper over the official C implementation.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace s5v::s5 {

inline constexpr size_t kBlake3HashLen = 32;
using Blake3Hash = std::array<uint8_t, kBlake3HashLen>;

// Incremental hasher; the state lives inline (no allocation), so it is cheap to create on the stack.
class Blake3Hasher {
public:
	Blake3Hasher() noexcept;
	// Keyed mode (32-byte key) and key-derivation mode, as in the BLAKE3 specification.
	static Blake3Hasher Keyed(std::span<const uint8_t, 32> key) noexcept;
	static Blake3Hasher DeriveKey(std::string_view context) noexcept;

	void Update(std::span<const uint8_t> data) noexcept;
	Blake3Hash Finalize() const noexcept;
	// Extended output (any length); the first 32 bytes equal Finalize().
	void FinalizeXof(std::span<uint8_t> out) const noexcept;
	void Reset() noexcept;

private:
	alignas(8) unsigned char state_[1920];
};

// One-shot hash of a byte range.
Blake3Hash Blake3(std::span<const uint8_t> data) noexcept;

} // namespace s5v::s5
