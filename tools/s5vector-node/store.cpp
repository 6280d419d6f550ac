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

s5v::Status BlobStore::Put(const std::string &bytes, s5::BlobId *id) {
	*id = s5::BlobIdOf({reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size()});
	const std::string final_path = PathOf(*id);
	if (Has(*id))
		return s5v::Status::Ok();
	std::string tmp;
	{
		std::lock_guard<std::mutex> lock(tmp_mutex_);
		tmp = dir_ + "/tmp/" + std::to_string(::getpid()) + "-" + std::to_string(tmp_counter_++);
	}
	int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return Errno("create " + tmp);
	size_t done = 0;
	while (done < bytes.size()) {
		ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			s5v::Status st = Errno("write " + tmp);
			::close(fd);
			::unlink(tmp.c_str());
			return st;
		}
		done += static_cast<size_t>(n);
	}
	if (::fsync(fd) != 0 || ::close(fd) != 0) {
		s5v::Status st = Errno("fsync " + tmp);
		::unlink(tmp.c_str());
		return st;
	}
	if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
		s5v::Status st = Errno("rename " + tmp);
		::unlink(tmp.c_str());
		return st;
	}
	return FsyncPath(dir_ + "/blobs", O_RDONLY | O_DIRECTORY);
}

bool BlobStore::Has(const s5::BlobId &id) const {
	struct stat st;
	return ::stat(PathOf(id).c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == id.size;
}

s5v::Status BlobStore::Get(const s5::BlobId &id, std::string *bytes) const {
	const std::string path = PathOf(id);
	int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? s5v::Status::NotFound("no such blob") : Errno("open " + path);
	struct stat st;
	if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != id.size) {
		::close(fd);
		return s5v::Status::NotFound("no blob with this size");
	}
	bytes->resize(static_cast<size_t>(st.st_size));
	size_t done = 0;
	while (done < bytes->size()) {
		ssize_t n = ::read(fd, bytes->data() + done, bytes->size() - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			::close(fd);
			return Errno("read " + path);
		}
		done += static_cast<size_t>(n);
	}
	::close(fd);
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
