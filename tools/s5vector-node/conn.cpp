// Deadlines, byte caps, the keep-alive loop and the connection limit for s5vector-node (see conn.h).
#include "conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace s5v::node {

std::atomic<bool> g_stopping{false};

namespace {

thread_local Connection *t_conn = nullptr;
// Set on the accepting thread while it refuses a connection past the limit.
thread_local bool t_refuse = false;

constexpr size_t kReadBuffer = 16 * 1024;

const char *StatusText(int status) {
	switch (status) {
	case 408:
		return "Request Timeout";
	case 413:
		return "Payload Too Large";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	default:
		return "Error";
	}
}

// A complete short answer that ends the connection.
std::string FinalAnswer(int status, const std::string &reason) {
	const std::string body = reason + "\n";
	return "HTTP/1.1 " + std::to_string(status) + " " + StatusText(status) +
	       "\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
	       "\r\n\r\n" + body;
}

void Address(const sockaddr_storage &ss, std::string &ip, int &port) {
	char host[INET6_ADDRSTRLEN] = {};
	port = -1;
	if (ss.ss_family == AF_INET) {
		const auto *sin = reinterpret_cast<const sockaddr_in *>(&ss);
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		port = ntohs(sin->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		const auto *sin6 = reinterpret_cast<const sockaddr_in6 *>(&ss);
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		port = ntohs(sin6->sin6_port);
	}
	ip = host;
}

} // namespace

Connection *CurrentConnection() {
	return t_conn;
}

Connection::Connection(int fd, const ConnectionLimits &limits) : fd_(fd), limits_(limits), buf_(kReadBuffer) {
	BeginRequest();
}

Connection::~Connection() {
	if (fd_ >= 0)
		::close(fd_);
}

void Connection::BeginRequest() {
	phase_ = Phase::Headers;
	deadline_ = Clock::now() + std::chrono::milliseconds(limits_.header_timeout_ms);
	consumed_ = 0;
	phase_limit_ = limits_.max_header_bytes;
	answer_started_ = false;
	bad_line_end_ = false;
	prev_ = 0;
}

void Connection::BeginBody(uint64_t body_limit) {
	if (phase_ == Phase::Body)
		return;
	phase_ = Phase::Body;
	deadline_ = Clock::now() + std::chrono::milliseconds(limits_.body_timeout_ms);
	consumed_ = 0;
	phase_limit_ = body_limit;
}

bool Connection::WaitFor(short events, Clock::time_point deadline) const {
	for (;;) {
		if (g_stopping)
			return false;
		auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
		if (left <= 0)
			return false;
		pollfd p{fd_, events, 0};
		int rc = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 100)));
		if (rc > 0)
			return true; // readable, writable, or an error/hangup the next call reports
		if (rc < 0 && errno != EINTR)
			return false;
	}
}

bool Connection::WaitForNextRequest() {
	if (buf_off_ < buf_len_)
		return true;
	return WaitFor(POLLIN, Clock::now() + std::chrono::milliseconds(limits_.keep_alive_timeout_ms));
}

void Connection::Fail(int status, const char *reason) {
	if (!answer_started_ && !failed_) {
		answer_started_ = true;
		const std::string a = FinalAnswer(status, reason);
		// Short enough for the socket buffer: never blocks.
		(void)::send(fd_, a.data(), a.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	failed_ = true;
	close_after_ = true;
}

bool Connection::Fill() {
	buf_off_ = buf_len_ = 0;
	const auto idle_deadline = Clock::now() + std::chrono::milliseconds(limits_.idle_timeout_ms);
	if (!WaitFor(POLLIN, std::min(deadline_, idle_deadline))) {
		if (g_stopping)
			failed_ = true;
		else if (idle_deadline < deadline_)
			Fail(408, "client silent for longer than --idle-timeout-ms");
		else if (phase_ == Phase::Headers)
			Fail(408, "request headers not complete within --header-timeout-ms");
		else
			Fail(408, "request body not complete within --body-timeout-ms");
		return false;
	}
	ssize_t n;
	do {
		n = ::recv(fd_, buf_.data(), buf_.size(), 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		failed_ = true;
		return false;
	}
	buf_len_ = static_cast<size_t>(n);
	return true;
}

ssize_t Connection::read(char *ptr, size_t size) {
	if (failed_)
		return -1;
	if (consumed_ >= phase_limit_) {
		if (phase_ == Phase::Headers)
			Fail(431, "request line and headers exceed 64 KiB");
		else
			Fail(413, "request body exceeds the node's limit (--max-blob-size)");
		return -1;
	}
	if (buf_off_ == buf_len_) {
		if (!Fill())
			return -1;
		if (buf_len_ == 0)
			return 0; // the peer closed
	}
	size_t n = std::min({size, buf_len_ - buf_off_, static_cast<size_t>(phase_limit_ - consumed_)});
	std::memcpy(ptr, buf_.data() + buf_off_, n);
	if (phase_ == Phase::Headers) {
		for (size_t i = 0; i < n; i++) {
			const char c = ptr[i];
			if ((c == '\n' && prev_ != '\r') || (prev_ == '\r' && c != '\n') || c == '\0')
				bad_line_end_ = true;
			prev_ = c;
		}
	}
	buf_off_ += n;
	consumed_ += n;
	return static_cast<ssize_t>(n);
}

ssize_t Connection::write(const char *ptr, size_t size) {
	if (failed_)
		return -1;
	if (!answer_started_ && !(size >= 12 && std::memcmp(ptr, "HTTP/1.1 100", 12) == 0))
		answer_started_ = true; // an interim 100 Continue is not the answer
	size_t done = 0;
	while (done < size) {
		if (!WaitFor(POLLOUT, Clock::now() + std::chrono::milliseconds(limits_.idle_timeout_ms))) {
			failed_ = true;
			return -1;
		}
		ssize_t n = ::send(fd_, ptr + done, size - done, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (n <= 0) {
			failed_ = true;
			return -1;
		}
		done += static_cast<size_t>(n);
	}
	return static_cast<ssize_t>(size);
}

bool Connection::is_readable() const {
	if (buf_off_ < buf_len_)
		return true;
	pollfd p{fd_, POLLIN, 0};
	return ::poll(&p, 1, 0) > 0;
}

bool Connection::is_writable() const {
	return !failed_ && WaitFor(POLLOUT, Clock::now() + std::chrono::milliseconds(limits_.idle_timeout_ms));
}

void Connection::get_remote_ip_and_port(std::string &ip, int &port) const {
	sockaddr_storage ss{};
	socklen_t len = sizeof(ss);
	if (::getpeername(fd_, reinterpret_cast<sockaddr *>(&ss), &len) == 0)
		Address(ss, ip, port);
}

void Connection::get_local_ip_and_port(std::string &ip, int &port) const {
	sockaddr_storage ss{};
	socklen_t len = sizeof(ss);
	if (::getsockname(fd_, reinterpret_cast<sockaddr *>(&ss), &len) == 0)
		Address(ss, ip, port);
}

void Connection::Drop() {
	linger lg{1, 0}; // reset, like a crashed peer
	::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	::shutdown(fd_, SHUT_RDWR);
	failed_ = true;
	close_after_ = false; // no lingering
}

void Connection::Finish() {
	if (fd_ < 0)
		return;
	if (close_after_ && !g_stopping) {
		// Input may be left unread: closing now would send a reset that can destroy our answer in flight.
		// Stop sending, read and discard for a short while (bounded in time and bytes), then close.
		::shutdown(fd_, SHUT_WR);
		auto deadline = Clock::now() + std::chrono::milliseconds(500);
		size_t drained = 0;
		while (drained < (size_t{1} << 20) && WaitFor(POLLIN, deadline)) {
			ssize_t n = ::recv(fd_, buf_.data(), buf_.size(), MSG_DONTWAIT);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0)
				break;
			drained += static_cast<size_t>(n);
		}
	} else if (!failed_) {
		::shutdown(fd_, SHUT_RDWR);
	}
	::close(fd_);
	fd_ = -1;
}

ConnectionPool::~ConnectionPool() {
	shutdown();
}

void ConnectionPool::enqueue(std::function<void()> fn) {
	std::unique_lock<std::mutex> lock(mu_);
	if (active_ >= max_ || stop_) {
		lock.unlock();
		t_refuse = true;
		fn(); // NodeServer::process_and_close_socket answers 503 and closes at once
		t_refuse = false;
		return;
	}
	active_++;
	queue_.push_back(std::move(fn));
	// threads >= active connections, so every queued connection has an idle thread to take it
	if (threads_.size() < active_)
		threads_.emplace_back([this] { Work(); });
	else
		cv_.notify_one();
}

void ConnectionPool::Work() {
	std::unique_lock<std::mutex> lock(mu_);
	for (;;) {
		cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
		if (queue_.empty())
			return; // stopping
		std::function<void()> fn = std::move(queue_.front());
		queue_.pop_front();
		lock.unlock();
		fn();
		fn = nullptr;
		lock.lock();
		active_--;
	}
}

void ConnectionPool::shutdown() {
	{
		std::lock_guard<std::mutex> lock(mu_);
		stop_ = true;
	}
	cv_.notify_all();
	for (auto &t : threads_)
		if (t.joinable())
			t.join();
	threads_.clear();
}

bool NodeServer::process_and_close_socket(socket_t sock) {
	if (t_refuse) {
		const std::string a = FinalAnswer(503, "too many connections (--max-connections), retry later");
		(void)::send(sock, a.data(), a.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
		::shutdown(sock, SHUT_WR);
		::close(sock);
		return false;
	}
	Connection conn(sock, limits_);
	t_conn = &conn;
	bool ret = false;
	for (size_t i = 0; i < limits_.keep_alive_max_requests && !g_stopping; i++) {
		if (i > 0) {
			if (!conn.WaitForNextRequest())
				break;
			conn.BeginRequest();
		}
		bool closed = false;
		ret = process_request(conn, i + 1 == limits_.keep_alive_max_requests, closed, nullptr);
		if (!ret || closed || conn.failed() || conn.close_after())
			break;
	}
	t_conn = nullptr;
	conn.Finish();
	return ret;
}

} // namespace s5v::node
