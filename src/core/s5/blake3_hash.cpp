// BLAKE3 wrapper: forwards to the official C implementation (runtime SIMD dispatch happens inside it).
#include "core/s5/blake3_hash.h"

#include <new>

#include "blake3.h"

namespace s5v::s5 {

static_assert(sizeof(blake3_hasher) <= sizeof(Blake3Hasher), "Blake3Hasher state buffer too small");
static_assert(alignof(blake3_hasher) <= 8, "Blake3Hasher state buffer under-aligned");

namespace {
blake3_hasher *State(unsigned char *buf) {
	return std::launder(reinterpret_cast<blake3_hasher *>(buf));
}
const blake3_hasher *State(const unsigned char *buf) {
	return std::launder(reinterpret_cast<const blake3_hasher *>(buf));
}
} // namespace

Blake3Hasher::Blake3Hasher() noexcept {
	blake3_hasher_init(new (state_) blake3_hasher);
}

Blake3Hasher Blake3Hasher::Keyed(std::span<const uint8_t, 32> key) noexcept {
	Blake3Hasher h;
	blake3_hasher_init_keyed(State(h.state_), key.data());
	return h;
}

Blake3Hasher Blake3Hasher::DeriveKey(std::string_view context) noexcept {
	Blake3Hasher h;
	blake3_hasher_init_derive_key_raw(State(h.state_), context.data(), context.size());
	return h;
}

void Blake3Hasher::Update(std::span<const uint8_t> data) noexcept {
	if (!data.empty())
		blake3_hasher_update(State(state_), data.data(), data.size());
}

Blake3Hash Blake3Hasher::Finalize() const noexcept {
	Blake3Hash out;
	blake3_hasher_finalize(State(state_), out.data(), out.size());
	return out;
}

void Blake3Hasher::FinalizeXof(std::span<uint8_t> out) const noexcept {
	blake3_hasher_finalize(State(state_), out.data(), out.size());
}

void Blake3Hasher::Reset() noexcept {
	blake3_hasher_reset(State(state_));
}

Blake3Hash Blake3(std::span<const uint8_t> data) noexcept {
	Blake3Hasher h;
	h.Update(data);
	return h.Finalize();
}

} // namespace s5v::s5
