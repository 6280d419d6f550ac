// Connection handling for s5vector-node: what cpp-httplib 0.11 does not bound by itself.
//
// httplib reads a request through a Stream and runs one connection per TaskQueue task. We give it our own
// Stream (Connection) with a deadline for the request line and headers, a deadline for the body, a limit on
// silence per read or write, and byte caps for headers and bodies; our own keep-alive loop; and a TaskQueue
// (ConnectionPool) that serves at most max_connections connections at once, each on its own thread, and
// answers 503 to the ones past the limit.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace s5v::node {

struct ConnectionLimits {
	long header_timeout_ms = 10000;    // request line + headers, from the first byte (or the accept)
	long body_timeout_ms = 300000;     // the whole request body
	long idle_timeout_ms = 10000;      // longest silence within a read or a write
	long keep_alive_timeout_ms = 5000; // wait for the next request on a kept-alive connection
	size_t max_header_bytes = 64 * 1024;
	size_t keep_alive_max_requests = 1000;
};

// Set by the signal thread: every wait ends within 100 ms and the connection closes.
extern std::atomic<bool> g_stopping;

class Connection final : public httplib::Stream {
public:
	Connection(int fd, const ConnectionLimits &limits);
	~Connection() override;
	Connection(const Connection &) = delete;
	Connection &operator=(const Connection &) = delete;

	// Before each request: the header deadline starts now.
	void BeginRequest();
	// Headers are parsed: the body may bring at most body_limit bytes on the wire, within the body deadline.
	// Only the first call per request counts.
	void BeginBody(uint64_t body_limit);
	// Waits for the first byte of the next request (keep-alive); false on timeout, close or stop.
	bool WaitForNextRequest();
	// The answer must end the connection (a body is left unread, or the client misbehaved).
	void CloseAfterAnswer() { close_after_ = true; }
	bool close_after() const { return close_after_; }
	// The request line and headers used CRLF line ends only (no bare LF, which httplib silently skips as a
	// line, nor a bare CR): anything else is refused, since a proxy may read such a request differently.
	bool header_lines_clean() const { return !bad_line_end_; }
	// BeginBody was called for this request (our checks ran and passed).
	bool body_started() const { return phase_ == Phase::Body; }
	// The connection is unusable: a deadline or a cap was hit (and answered), the peer left, or we stop.
	bool failed() const { return failed_; }
	// Resets the connection without an answer (misbehaviour injection).
	void Drop();
	// Lingering close when input may be left unread (so the client sees our answer, not a reset), then close.
	void Finish();

	// httplib::Stream
	bool is_readable() const override;
	bool is_writable() const override;
	ssize_t read(char *ptr, size_t size) override;
	ssize_t write(const char *ptr, size_t size) override;
	void get_remote_ip_and_port(std::string &ip, int &port) const override;
	void get_local_ip_and_port(std::string &ip, int &port) const override;
	socket_t socket() const override { return fd_; }

private:
	enum class Phase { Headers, Body };
	using Clock = std::chrono::steady_clock;

	bool Fill();
	// Answers with status (if no answer was started for this request) and marks the connection failed.
	void Fail(int status, const char *reason);
	bool WaitFor(short events, Clock::time_point deadline) const;

	int fd_;
	ConnectionLimits limits_;
	Phase phase_ = Phase::Headers;
	Clock::time_point deadline_;
	uint64_t consumed_ = 0; // bytes handed to httplib in the current phase
	uint64_t phase_limit_ = 0;
	bool answer_started_ = false;
	bool bad_line_end_ = false;
	char prev_ = 0; // last header byte handed out
	bool close_after_ = false;
	bool failed_ = false;
	std::vector<char> buf_;
	size_t buf_off_ = 0;
	size_t buf_len_ = 0;
};

// The connection being served by the calling thread (handlers run on it), or null.
Connection *CurrentConnection();

// One thread per connection, up to max_connections; threads are kept for reuse. Past the limit a
// connection is answered 503 and closed by the accepting thread, without waiting.
class ConnectionPool final : public httplib::TaskQueue {
public:
	explicit ConnectionPool(size_t max_connections) : max_(max_connections) {}
	~ConnectionPool() override;
	void enqueue(std::function<void()> fn) override;
	void shutdown() override;

private:
	void Work();

	const size_t max_;
	std::mutex mu_;
	std::condition_variable cv_;
	std::deque<std::function<void()>> queue_;
	std::vector<std::thread> threads_;
	size_t active_ = 0; // queued + running
	bool stop_ = false;
};

class NodeServer : public httplib::Server {
public:
	explicit NodeServer(const ConnectionLimits &limits) : limits_(limits) {}
	// cpp-httplib 0.11 listens with a backlog of 5: a burst of parallel connections (the client fetches the
	// probes of one query at once) would see SYNs dropped and a 1 s retransmit. Raise it after binding.
	void RaiseBacklog() { ::listen(svr_sock_, 1024); }

private:
	bool process_and_close_socket(socket_t sock) override;
	ConnectionLimits limits_;
};

} // namespace s5v::node
