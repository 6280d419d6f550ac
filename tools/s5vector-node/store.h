// Content-addressed blob store on disk for s5vector-node: one file per blob, named by its BLAKE3 hash.
#pragma once

#include <mutex>
#include <string>

#include "core/s5/cid.h"
#include "core/status.h"

namespace s5v::node {

class BlobStore {
public:
	// Creates DIR/blobs and DIR/tmp if needed; leftovers in tmp from a crash are removed.
	[[nodiscard]] s5v::Status Open(const std::string &dir);
	// Stores bytes atomically (temp file, fsync, rename, fsync of the directory); idempotent.
	[[nodiscard]] s5v::Status Put(const std::string &bytes, s5::BlobId *id);
	// NotFound unless a blob with this hash and exactly this size is stored.
	[[nodiscard]] s5v::Status Get(const s5::BlobId &id, std::string *bytes) const;
	[[nodiscard]] bool Has(const s5::BlobId &id) const;
	[[nodiscard]] s5v::Status Remove(const s5::BlobId &id);

private:
	std::string PathOf(const s5::BlobId &id) const;
	std::string dir_;
	mutable std::mutex tmp_mutex_;
	unsigned long long tmp_counter_ = 0;
};

} // namespace s5v::node
