// The node's blob store: atomic writes, so a crash never leaves a partial blob under a valid name.
#include "store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/s5/multibase.h"

namespace s5v::node {

namespace {

s5v::Status Errno(const std::string &what) {
	return s5v::Status::Unavailable(what + ": " + std::strerror(errno));
}

s5v::Status FsyncPath(const std::string &path, int flags) {
	int fd = ::open(path.c_str(), flags | O_CLOEXEC);
	if (fd < 0)
		return Errno("open " + path);
	int rc = ::fsync(fd);
	::close(fd);
	return rc == 0 ? s5v::Status::Ok() : Errno("fsync " + path);
}

} // namespace

s5v::Status BlobStore::Open(const std::string &dir) {
	dir_ = dir;
	std::error_code ec;
	std::filesystem::create_directories(dir + "/blobs", ec);
	if (ec)
		return s5v::Status::Unavailable("cannot create " + dir + "/blobs: " + ec.message());
	std::filesystem::create_directories(dir + "/tmp", ec);
	if (ec)
		return s5v::Status::Unavailable("cannot create " + dir + "/tmp: " + ec.message());
	for (const auto &entry : std::filesystem::directory_iterator(dir + "/tmp", ec))
		std::filesystem::remove(entry.path(), ec);
	return s5v::Status::Ok();
}

std::string BlobStore::PathOf(const s5::BlobId &id) const {
	return dir_ + "/blobs/" + s5::HexEncode(id.hash);
}

s5v::Status BlobWriter::Append(const char *data, size_t n) {
	if (fd_ < 0)
		return s5v::Status::Unavailable("write to a closed upload");
	hasher_.Update({reinterpret_cast<const uint8_t *>(data), n});
	size_t done = 0;
	while (done < n) {
		ssize_t w = ::write(fd_, data + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return Errno("write " + tmp_);
		done += static_cast<size_t>(w);
	}
	size_ += n;
	return s5v::Status::Ok();
}

void BlobWriter::Abort() {
	if (fd_ >= 0) {
		::close(fd_);
		::unlink(tmp_.c_str());
	}
	fd_ = -1;
}

s5v::Status BlobStore::Begin(BlobWriter *w) {
	w->Abort();
	{
		std::lock_guard<std::mutex> lock(tmp_mutex_);
		w->tmp_ = dir_ + "/tmp/" + std::to_string(::getpid()) + "-" + std::to_string(tmp_counter_++);
	}
	w->fd_ = ::open(w->tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (w->fd_ < 0)
		return Errno("create " + w->tmp_);
	w->hasher_.Reset();
	w->size_ = 0;
	return s5v::Status::Ok();
}

s5v::Status BlobStore::Commit(BlobWriter *w, s5::BlobId *id) {
	if (w->fd_ < 0)
		return s5v::Status::Unavailable("commit of a closed upload");
	id->hash = w->hasher_.Finalize();
	id->size = w->size_;
	if (Has(*id)) {
		w->Abort();
		return s5v::Status::Ok();
	}
	int fd = w->fd_;
	w->fd_ = -1;
	if (::fsync(fd) != 0 || ::close(fd) != 0) {
		s5v::Status st = Errno("fsync " + w->tmp_);
		::unlink(w->tmp_.c_str());
		return st;
	}
	if (::rename(w->tmp_.c_str(), PathOf(*id).c_str()) != 0) {
		s5v::Status st = Errno("rename " + w->tmp_);
		::unlink(w->tmp_.c_str());
		return st;
	}
	return FsyncPath(dir_ + "/blobs", O_RDONLY | O_DIRECTORY);
}

s5v::Status BlobStore::Put(const std::string &bytes, s5::BlobId *id) {
	BlobWriter w;
	S5V_RETURN_IF_ERROR(Begin(&w));
	S5V_RETURN_IF_ERROR(w.Append(bytes.data(), bytes.size()));
	return Commit(&w, id);
}

bool BlobStore::Has(const s5::BlobId &id) const {
	struct stat st;
	return ::stat(PathOf(id).c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == id.size;
}

s5v::Status BlobStore::OpenBlob(const s5::BlobId &id, int *fd_out) const {
	const std::string path = PathOf(id);
	int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? s5v::Status::NotFound("no such blob") : Errno("open " + path);
	struct stat st;
	if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != id.size) {
		::close(fd);
		return s5v::Status::NotFound("no blob with this size");
	}
	*fd_out = fd;
	return s5v::Status::Ok();
}

s5v::Status BlobStore::Remove(const s5::BlobId &id) {
	if (!Has(id))
		return s5v::Status::NotFound("no such blob");
	if (::unlink(PathOf(id).c_str()) != 0)
		return Errno("unlink");
	return FsyncPath(dir_ + "/blobs", O_RDONLY | O_DIRECTORY);
}

} // namespace s5v::node
