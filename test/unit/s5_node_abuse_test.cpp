// s5vector-node as a network service under hostile or careless clients: raw TCP on loopback against a real
// node process (malformed, slow and oversized requests need raw sockets; curl would refuse to send them).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/s5/cid.h"
#include "s5_node_process.h"
#include "s5_test_util.h"

#ifndef S5V_NODE_PATH
#error "S5V_NODE_PATH must name the s5vector-node binary"
#endif

namespace s5v::s5 {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t0) {
	return std::chrono::duration<double>(Clock::now() - t0).count();
}

// One answer as read off the wire.
struct Reply {
	int status = 0;        // 0: no status line arrived
	std::string head;      // status line and headers
	std::string body;      // as many body bytes as arrived (up to the read cap)
	size_t wire_bytes = 0; // everything received
	bool closed = false;   // the node closed the connection
	bool timed_out = false;
	double seconds = 0;

	// The first header of that name (case-insensitive), "" if absent.
	std::string Header(const std::string &name) const {
		size_t pos = head.find("\r\n");
		while (pos != std::string::npos && pos + 2 < head.size()) {
			size_t end = head.find("\r\n", pos + 2);
			std::string line = head.substr(pos + 2, end == std::string::npos ? std::string::npos : end - pos - 2);
			size_t colon = line.find(':');
			if (colon != std::string::npos && strncasecmp(line.c_str(), name.c_str(), name.size()) == 0 &&
			    colon == name.size()) {
				size_t v = colon + 1;
				while (v < line.size() && line[v] == ' ')
					v++;
				return line.substr(v);
			}
			pos = end;
		}
		return "";
	}
};

// A raw TCP connection to the node.
class Conn {
public:
	explicit Conn(int port) {
		fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		sockaddr_in a{};
		a.sin_family = AF_INET;
		a.sin_port = htons(static_cast<uint16_t>(port));
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr *>(&a), sizeof(a)) != 0) {
			::close(fd_);
			fd_ = -1;
		}
	}
	Conn(const Conn &) = delete;
	Conn &operator=(const Conn &) = delete;
	~Conn() { Close(); }
	void Close() {
		if (fd_ >= 0)
			::close(fd_);
		fd_ = -1;
	}
	bool ok() const { return fd_ >= 0; }

	bool Send(const std::string &s) {
		size_t done = 0;
		while (fd_ >= 0 && done < s.size()) {
			ssize_t n = ::send(fd_, s.data() + done, s.size() - done, MSG_NOSIGNAL);
			if (n <= 0)
				return false;
			done += static_cast<size_t>(n);
		}
		return fd_ >= 0;
	}

	// True while the node neither answered nor closed: nothing is readable right now.
	bool Silent() const {
		pollfd p{fd_, POLLIN, 0};
		return fd_ >= 0 && ::poll(&p, 1, 0) == 0;
	}

	// Reads one answer: the head, then Content-Length body bytes (or until close), at most max_bytes in all.
	// Bytes past the answer (the next pipelined answer) are kept for the next Read.
	Reply Read(int timeout_ms, size_t max_bytes = size_t{16} << 20) {
		Reply r;
		auto t0 = Clock::now();
		auto deadline = t0 + std::chrono::milliseconds(timeout_ms);
		std::string data;
		data.swap(pending_);
		size_t want = std::string::npos; // total bytes of the answer once the head is known (else: until close)
		bool head_seen = false;
		char buf[65536];
		for (;;) {
			size_t end = data.find("\r\n\r\n");
			if (!head_seen && end != std::string::npos) {
				head_seen = true;
				r.head = data.substr(0, end);
				std::string cl = r.Header("Content-Length");
				if (r.head.rfind("HTTP/1.1 1", 0) == 0)
					want = end + 4; // an interim answer has no body
				else if (!cl.empty())
					want = end + 4 + std::stoull(cl);
			}
			if (fd_ < 0 || data.size() >= max_bytes || (want != std::string::npos && data.size() >= want))
				break;
			auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
			if (left <= 0) {
				r.timed_out = true;
				break;
			}
			pollfd p{fd_, POLLIN, 0};
			if (::poll(&p, 1, static_cast<int>(left)) <= 0)
				continue;
			ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
			if (n <= 0) {
				r.closed = true;
				break;
			}
			data.append(buf, static_cast<size_t>(n));
		}
		if (want != std::string::npos && data.size() > want) {
			pending_ = data.substr(want);
			data.resize(want);
		}
		r.seconds = SecondsSince(t0);
		r.wire_bytes = data.size();
		size_t end = data.find("\r\n\r\n");
		if (end != std::string::npos) {
			r.head = data.substr(0, end);
			r.body = data.substr(end + 4);
		} else {
			r.head = data;
		}
		if (r.head.rfind("HTTP/1.", 0) == 0 && r.head.size() >= 12)
			r.status = std::atoi(r.head.c_str() + 9);
		return r;
	}

	// After an answer: does the node close the connection (EOF) within the timeout?
	bool ClosedWithin(int timeout_ms) {
		auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
		char buf[4096];
		while (Clock::now() < deadline) {
			pollfd p{fd_, POLLIN, 0};
			if (::poll(&p, 1, 50) <= 0)
				continue;
			ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
			if (n <= 0)
				return true;
		}
		return false;
	}

private:
	int fd_ = -1;
	std::string pending_;
};

Reply Exchange(int port, const std::string &request, int timeout_ms = 5000, size_t max_bytes = size_t{16} << 20) {
	Conn c(port);
	if (!c.ok() || !c.Send(request))
		return {};
	return c.Read(timeout_ms, max_bytes);
}

std::string Get(const std::string &path, const std::string &extra = "") {
	return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + "Connection: close\r\n\r\n";
}

std::string Upload(const std::string &body, const std::string &extra = "Content-Type: application/octet-stream\r\n") {
	return "POST /s5/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra +
	       "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

// Chunked framing of body in pieces of chunk bytes.
std::string Chunked(const std::string &body, size_t chunk) {
	std::string out;
	char size[32];
	for (size_t i = 0; i < body.size(); i += chunk) {
		size_t n = std::min(chunk, body.size() - i);
		std::snprintf(size, sizeof(size), "%zx\r\n", n);
		out += size;
		out += body.substr(i, n);
		out += "\r\n";
	}
	return out + "0\r\n\r\n";
}

std::string CidOf(const std::string &bytes) {
	return RawCidText(BlobIdOf({reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size()}));
}

std::string RandomString(size_t n, uint32_t seed) {
	std::vector<uint8_t> v = test::RandomBytes(n, seed);
	return std::string(v.begin(), v.end());
}

// Peak resident memory of a process in KiB (VmHWM), -1 if unreadable.
long PeakRssKiB(pid_t pid) {
	std::ifstream f("/proc/" + std::to_string(pid) + "/status");
	std::string line;
	while (std::getline(f, line))
		if (line.rfind("VmHWM:", 0) == 0)
			return std::atol(line.c_str() + 6);
	return -1;
}

size_t StoredBlobs(const std::string &store) {
	size_t n = 0;
	std::error_code ec;
	for (const auto &e : std::filesystem::directory_iterator(store + "/blobs", ec)) {
		(void)e;
		n++;
	}
	return n;
}

class s5_node_abuse : public ::testing::Test {
protected:
	// Starts the node with space-separated flags.
	void Start(const std::string &flags = "") {
		std::vector<std::string> args;
		std::istringstream in(flags);
		for (std::string a; in >> a;)
			args.push_back(a);
		ASSERT_TRUE(node_.Start(S5V_NODE_PATH, store_.path(), args)) << "cannot start the node";
		port_ = node_.port();
	}
	// Stores bytes through a plain upload and returns their CID text.
	std::string Put(const std::string &bytes) {
		Reply r = Exchange(port_, Upload(bytes));
		EXPECT_EQ(r.status, 200) << r.head;
		EXPECT_EQ(r.body, "{\"cid\":\"" + CidOf(bytes) + "\"}");
		return CidOf(bytes);
	}

	test::TempDir store_;
	test::NodeProcess node_;
	int port_ = 0;
};

// Finding 10: thousands of ranges in one request built a multipart answer of hundreds of MB.
TEST_F(s5_node_abuse, ManyRangesAreRefusedCheaply) {
	ASSERT_NO_FATAL_FAILURE(Start());
	const std::string blob = RandomString(300000, 1);
	const std::string cid = Put(blob);
	long before = PeakRssKiB(node_.pid());
	ASSERT_GT(before, 0);

	std::string ranges = "bytes=0-";
	while (ranges.size() < 8000)
		ranges += ",0-";
	Reply r = Exchange(port_, Get("/" + cid, "Range: " + ranges + "\r\n"), 10000);
	EXPECT_EQ(r.status, 416) << r.head.substr(0, 200);
	EXPECT_EQ(r.Header("Content-Range"), "bytes */300000");
	EXPECT_LT(r.wire_bytes, 4096u) << "the answer to one request must stay small";
	// Two ranges are refused the same way (one range per request is supported).
	r = Exchange(port_, Get("/s5/download/" + cid, "Range: bytes=0-9, 20-29\r\n"));
	EXPECT_EQ(r.status, 416);
	EXPECT_EQ(r.Header("Content-Range"), "bytes */300000");

	long after = PeakRssKiB(node_.pid());
	EXPECT_LT(after - before, 20 * 1024) << "peak RSS grew from " << before << " KiB to " << after << " KiB";

	// One range still works.
	r = Exchange(port_, Get("/" + cid, "Range: bytes=100-199\r\n"));
	EXPECT_EQ(r.status, 206);
	EXPECT_EQ(r.Header("Content-Range"), "bytes 100-199/300000");
	EXPECT_EQ(r.body, blob.substr(100, 100));
}

// Finding 13: Content-Range echoed an out-of-range end; 416 carried "bytes 300000-299999/300000".
TEST_F(s5_node_abuse, ContentRangeIsClampedAndUnsatisfiableSaysStar) {
	ASSERT_NO_FATAL_FAILURE(Start());
	const std::string blob = RandomString(300000, 2);
	const std::string cid = Put(blob);

	Reply r = Exchange(port_, Get("/" + cid, "Range: bytes=10-999999999\r\n"));
	EXPECT_EQ(r.status, 206);
	EXPECT_EQ(r.Header("Content-Range"), "bytes 10-299999/300000");
	EXPECT_EQ(r.Header("Content-Length"), "299990");
	EXPECT_TRUE(r.body == blob.substr(10));

	r = Exchange(port_, Get("/" + cid, "Range: bytes=-100\r\n"));
	EXPECT_EQ(r.status, 206);
	EXPECT_EQ(r.Header("Content-Range"), "bytes 299900-299999/300000");
	EXPECT_TRUE(r.body == blob.substr(299900));

	r = Exchange(port_, Get("/" + cid, "Range: bytes=-999999999\r\n"));
	EXPECT_EQ(r.status, 206);
	EXPECT_EQ(r.Header("Content-Range"), "bytes 0-299999/300000");

	for (const char *unsatisfiable : {"bytes=300000-", "bytes=300000-300010", "bytes=-0"}) {
		r = Exchange(port_, Get("/" + cid, std::string("Range: ") + unsatisfiable + "\r\n"));
		EXPECT_EQ(r.status, 416) << unsatisfiable;
		EXPECT_EQ(r.Header("Content-Range"), "bytes */300000") << unsatisfiable;
		EXPECT_EQ(r.body, "") << unsatisfiable;
	}
	// HEAD answers the same headers without a body.
	Conn c(port_);
	ASSERT_TRUE(c.Send("HEAD /" + cid + " HTTP/1.1\r\nHost: x\r\nRange: bytes=5-9\r\nConnection: close\r\n\r\n"));
	r = c.Read(5000);
	EXPECT_EQ(r.status, 206);
	EXPECT_EQ(r.Header("Content-Range"), "bytes 5-9/300000");
	EXPECT_TRUE(r.closed);
	EXPECT_EQ(r.body, "");
}

// Finding 11: a chunked upload bypassed --max-blob-size; a declared length over it was read before the 413.
TEST_F(s5_node_abuse, UploadLimitHoldsForEveryFraming) {
	ASSERT_NO_FATAL_FAILURE(Start("--max-blob-size 1000"));
	const std::string chunked_head = "POST /s5/upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
	                                 "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
	// Chunked, over the limit: 413, nothing stored.
	const std::string big = RandomString(5000, 3);
	Reply r = Exchange(port_, chunked_head + Chunked(big, 500));
	EXPECT_EQ(r.status, 413) << r.head;
	EXPECT_EQ(StoredBlobs(store_.path()), 0u);
	EXPECT_EQ(Exchange(port_, Get("/s5/download/" + CidOf(big))).status, 404);
	// Chunked within the limit works.
	const std::string small = RandomString(1000, 4);
	r = Exchange(port_, chunked_head + Chunked(small, 300));
	EXPECT_EQ(r.status, 200) << r.head;
	EXPECT_EQ(r.body, "{\"cid\":\"" + CidOf(small) + "\"}");
	EXPECT_EQ(StoredBlobs(store_.path()), 1u);
	// A declared length over the limit is refused at once, before any body byte is sent.
	Conn c(port_);
	ASSERT_TRUE(c.Send("POST /s5/upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
	                   "Content-Length: 100000000\r\n\r\n"));
	r = c.Read(3000);
	EXPECT_EQ(r.status, 413) << r.head;
	EXPECT_LT(r.seconds, 2.0);
	EXPECT_TRUE(r.closed || c.ClosedWithin(2000)) << "the unread body must not be parsed as a request";
	// No framing at all (the body would run to the end of the connection): 411.
	c.Close();
	Conn d(port_);
	ASSERT_TRUE(d.Send("POST /s5/upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n\r\nabc"));
	r = d.Read(3000);
	EXPECT_EQ(r.status, 411) << r.head;
	// Framings the node does not understand, or two at once (request smuggling): refused.
	r = Exchange(port_, "POST /s5/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n"
	                    "Connection: close\r\n\r\n" +
	                        Chunked("abc", 3));
	EXPECT_EQ(r.status, 501) << r.head;
	r = Exchange(port_, "POST /s5/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n"
	                    "Connection: close\r\n\r\n" +
	                        Chunked("abc", 3));
	EXPECT_EQ(r.status, 400) << r.head;
	r = Exchange(port_, "POST /s5/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n"
	                    "Connection: close\r\n\r\nabcd");
	EXPECT_EQ(r.status, 400) << r.head;
	r = Exchange(port_, "GET /s5/version HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
	                    "Connection: close\r\n\r\n" +
	                        Chunked("GET /s5/version HTTP/1.1\r\n\r\n", 100));
	EXPECT_EQ(r.status, 400) << r.head;
	EXPECT_EQ(StoredBlobs(store_.path()), 1u);
}

// Header syntax that a proxy in front may read differently from the node (request smuggling) is refused:
// httplib alone skips a line ending in a bare LF and keeps a name with a space before the colon.
TEST_F(s5_node_abuse, AmbiguousHeaderSyntaxIsRefused) {
	ASSERT_NO_FATAL_FAILURE(Start());
	const std::string body = "abc";
	for (const std::string &head : {
	         std::string("POST /s5/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\nContent-Length: 3\r\n"),
	         std::string("POST /s5/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n"),
	         std::string("POST /s5/upload HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n"
	                     "Content-Length: 3\r\n"),
	         std::string("POST /s5/upload HTTP/1.1\r\nHost: x\r\nX-A: 1\rTransfer-Encoding: chunked\r\n"
	                     "Content-Length: 3\r\n"),
	     }) {
		Reply r = Exchange(port_, head + "Connection: close\r\n\r\n" + body);
		EXPECT_EQ(r.status, 400) << head;
	}
	EXPECT_EQ(StoredBlobs(store_.path()), 0u);
	// The same upload, well formed, is stored.
	Reply r =
	    Exchange(port_, "POST /s5/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
	EXPECT_EQ(r.status, 200) << r.head;
	EXPECT_EQ(StoredBlobs(store_.path()), 1u);
}

// The same limits behind "Expect: 100-continue" (curl sends it for large bodies): refused before the body
// is sent, or a 100 and then the normal answer; and a kept-alive connection carries pipelined requests.
TEST_F(s5_node_abuse, ExpectContinueAndKeepAlive) {
	ASSERT_NO_FATAL_FAILURE(Start("--max-blob-size 1000"));
	{
		Conn c(port_);
		ASSERT_TRUE(c.Send("POST /s5/upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
		                   "Content-Length: 5000\r\nExpect: 100-continue\r\n\r\n"));
		Reply r = c.Read(3000);
		EXPECT_EQ(r.status, 413) << r.head;
		EXPECT_LT(r.seconds, 2.0);
	}
	{
		const std::string blob = RandomString(800, 8);
		Conn c(port_);
		ASSERT_TRUE(c.Send("POST /s5/upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
		                   "Content-Length: 800\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"));
		Reply r = c.Read(3000); // "HTTP/1.1 100 Continue\r\n\r\n" (no length: ends at the head)
		EXPECT_EQ(r.status, 100) << r.head;
		ASSERT_TRUE(c.Send(blob));
		r = c.Read(3000);
		EXPECT_EQ(r.status, 200) << r.head;
		EXPECT_EQ(r.body, "{\"cid\":\"" + CidOf(blob) + "\"}");
	}
	// Three requests in one write on one connection: three answers, in order, and the connection stays.
	Conn c(port_);
	const std::string get = "GET /s5/version HTTP/1.1\r\nHost: x\r\n\r\n";
	const std::string small = RandomString(10, 9);
	ASSERT_TRUE(c.Send(get + "POST /s5/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n" + small + get));
	Reply a = c.Read(3000), b = c.Read(3000), d = c.Read(3000);
	EXPECT_EQ(a.status, 200);
	EXPECT_NE(a.body.find("s5vector-node"), std::string::npos);
	EXPECT_EQ(b.status, 200);
	EXPECT_EQ(b.body, "{\"cid\":\"" + CidOf(small) + "\"}");
	EXPECT_EQ(d.status, 200);
	EXPECT_FALSE(d.closed);
	EXPECT_TRUE(c.Silent());
}

// Request lines and headers are capped in bytes (64 KiB) however they arrive: no line is buffered whole.
TEST_F(s5_node_abuse, OversizedHeadersAreCut) {
	ASSERT_NO_FATAL_FAILURE(Start());
	long before = PeakRssKiB(node_.pid());
	for (const std::string &start : {std::string("GET /"), std::string("GET / HTTP/1.1\r\nX-Long: ")}) {
		Conn c(port_);
		std::string junk(1 << 20, 'a');
		c.Send(start + junk); // may fail midway once the node closes
		Reply r = c.Read(3000);
		EXPECT_EQ(r.status, 431) << r.head;
		EXPECT_TRUE(r.closed || c.ClosedWithin(2000));
	}
	long after = PeakRssKiB(node_.pid());
	EXPECT_LT(after - before, 20 * 1024);
	EXPECT_EQ(Exchange(port_, Get("/s5/version")).status, 200);
}

// Finding 12: 40 slow connections (a byte at a time, headers never finished) starved every other client.
TEST_F(s5_node_abuse, SlowConnectionsDoNotStarveNormalRequests) {
	ASSERT_NO_FATAL_FAILURE(Start()); // default limits
	std::vector<std::unique_ptr<Conn>> slow;
	for (int i = 0; i < 40; i++) {
		slow.push_back(std::make_unique<Conn>(port_));
		ASSERT_TRUE(slow.back()->ok());
	}
	std::atomic<bool> stop{false};
	std::thread trickler([&] {
		const std::string partial = "GET /s5/version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
		for (size_t pos = 0; !stop; pos++) {
			for (auto &c : slow)
				c->Send(std::string(1, pos < partial.size() ? partial[pos] : 'a'));
			for (int i = 0; i < 10 && !stop; i++)
				std::this_thread::sleep_for(std::chrono::milliseconds(50));
		}
	});
	std::this_thread::sleep_for(std::chrono::milliseconds(1200));
	for (int i = 0; i < 3; i++) {
		Reply r = Exchange(port_, Get("/s5/version"), 2000);
		EXPECT_EQ(r.status, 200) << "request " << i << " after " << r.seconds << " s";
		EXPECT_LT(r.seconds, 2.0);
	}
	size_t open = 0;
	for (auto &c : slow)
		open += c->Silent() ? 1 : 0;
	EXPECT_EQ(open, slow.size()) << "the slow connections were still within their header deadline";
	stop = true;
	trickler.join();
}

// Finding 12: deadlines for headers and bodies, and a silence limit per read.
TEST_F(s5_node_abuse, HeaderAndBodyDeadlines) {
	ASSERT_NO_FATAL_FAILURE(Start("--header-timeout-ms 1000 --body-timeout-ms 1000 --idle-timeout-ms 600"));
	auto trickle = [](Conn &c, const std::string &s, std::atomic<bool> &stop) {
		for (size_t i = 0; i < s.size() && !stop; i++) {
			if (!c.Send(std::string(1, s[i])))
				return;
			std::this_thread::sleep_for(std::chrono::milliseconds(200));
		}
	};
	// Headers arriving a byte every 200 ms (never silent for long): cut at the header deadline.
	{
		Conn c(port_);
		std::atomic<bool> stop{false};
		std::thread t(trickle, std::ref(c), "GET /s5/version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: aaaaaaaaaaaaaaaa",
		              std::ref(stop));
		Reply r = c.Read(4000);
		stop = true;
		t.join();
		EXPECT_EQ(r.status, 408) << r.head;
		EXPECT_NE(r.body.find("--header-timeout-ms"), std::string::npos) << r.body;
		EXPECT_GT(r.seconds, 0.8);
		EXPECT_LT(r.seconds, 2.5);
		EXPECT_TRUE(r.closed || c.ClosedWithin(1000));
	}
	// A connection that sends nothing at all (silent for 600 ms).
	{
		Conn c(port_);
		Reply r = c.Read(4000);
		EXPECT_EQ(r.status, 408) << r.head;
		EXPECT_NE(r.body.find("--idle-timeout-ms"), std::string::npos) << r.body;
		EXPECT_LT(r.seconds, 2.5);
	}
	// A body arriving a byte every 200 ms: cut at the body deadline.
	{
		Conn c(port_);
		ASSERT_TRUE(c.Send("POST /s5/upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
		                   "Content-Length: 100\r\n\r\n"));
		std::atomic<bool> stop{false};
		std::thread t(trickle, std::ref(c), std::string(100, 'b'), std::ref(stop));
		Reply r = c.Read(4000);
		stop = true;
		t.join();
		EXPECT_EQ(r.status, 408) << r.head;
		EXPECT_NE(r.body.find("--body-timeout-ms"), std::string::npos) << r.body;
		EXPECT_LT(r.seconds, 2.5);
		EXPECT_EQ(StoredBlobs(store_.path()), 0u);
	}
	// A body that stops: cut after the silence limit.
	{
		Conn c(port_);
		ASSERT_TRUE(c.Send("POST /s5/upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
		                   "Content-Length: 100\r\n\r\n0123456789"));
		Reply r = c.Read(4000);
		EXPECT_EQ(r.status, 408) << r.head;
		EXPECT_GT(r.seconds, 0.4);
		EXPECT_NE(r.body.find("--idle-timeout-ms"), std::string::npos) << r.body;
	}
	// Normal traffic is unaffected.
	EXPECT_EQ(Exchange(port_, Get("/s5/version")).status, 200);
}

// Finding 12: a connection limit; connections past it get a quick 503, and slots come back when clients leave.
TEST_F(s5_node_abuse, ConnectionLimit) {
	ASSERT_NO_FATAL_FAILURE(Start("--max-connections 4 --header-timeout-ms 20000"));
	std::vector<std::unique_ptr<Conn>> held;
	for (int i = 0; i < 4; i++)
		held.push_back(std::make_unique<Conn>(port_));
	std::this_thread::sleep_for(std::chrono::milliseconds(300));
	{
		Conn extra(port_);
		ASSERT_TRUE(extra.ok());
		Reply r = extra.Read(2000);
		EXPECT_EQ(r.status, 503) << r.head;
		EXPECT_LT(r.seconds, 1.0);
		EXPECT_TRUE(r.closed || extra.ClosedWithin(1000));
	}
	held.clear(); // the node sees EOF and frees the slots
	auto t0 = Clock::now();
	Reply r;
	do {
		std::this_thread::sleep_for(std::chrono::milliseconds(100));
		r = Exchange(port_, Get("/s5/version"), 2000);
	} while (r.status == 503 && SecondsSince(t0) < 3);
	EXPECT_EQ(r.status, 200) << r.head;
}

// Finding 13: every presented token must match; a second cookie (or header) is not ignored.
TEST_F(s5_node_abuse, AuthTokenRules) {
	ASSERT_NO_FATAL_FAILURE(Start("--auth-token secret"));
	auto status = [&](const std::string &extra, const std::string &path = "/s5/version") {
		return Exchange(port_, Get(path, extra)).status;
	};
	EXPECT_EQ(status(""), 401);
	EXPECT_EQ(status("Authorization: Bearer secret\r\n"), 200);
	EXPECT_EQ(status("Cookie: s5-auth-token=secret\r\n"), 200);
	EXPECT_EQ(status("Cookie: theme=dark; s5-auth-token=secret\r\n"), 200);
	EXPECT_EQ(status("", "/s5/version?auth_token=secret"), 200);
	// A second Cookie header is read too.
	EXPECT_EQ(status("Cookie: theme=dark\r\nCookie: s5-auth-token=secret\r\n"), 200);
	// Conflicting duplicates: refused, whichever comes first.
	EXPECT_EQ(status("Cookie: s5-auth-token=wrong; s5-auth-token=secret\r\n"), 401);
	EXPECT_EQ(status("Cookie: s5-auth-token=secret; s5-auth-token=wrong\r\n"), 401);
	EXPECT_EQ(status("Cookie: s5-auth-token=secret\r\nCookie: s5-auth-token=wrong\r\n"), 401);
	EXPECT_EQ(status("Authorization: Bearer secret\r\nCookie: s5-auth-token=wrong\r\n"), 401);
	EXPECT_EQ(status("Authorization: Bearer wrong\r\nCookie: s5-auth-token=secret\r\n"), 401);
	EXPECT_EQ(status("Cookie: s5-auth-token=secret\r\n", "/s5/version?auth_token=wrong"), 401);
	// Near misses.
	EXPECT_EQ(status("Cookie: xs5-auth-token=secret\r\n"), 401);
	EXPECT_EQ(status("Cookie: s5-auth-token=secre\r\n"), 401);
	EXPECT_EQ(status("Cookie: s5-auth-token=secrets\r\n"), 401);
	EXPECT_EQ(status("Authorization: Bearer secretsecret\r\n"), 401);
	EXPECT_EQ(status("Authorization: Basic secret\r\n"), 401);
}

// Finding 13: a form content type got 413 above 8 KB; other types are now a clear 415.
TEST_F(s5_node_abuse, UploadContentTypes) {
	ASSERT_NO_FATAL_FAILURE(Start());
	const std::string blob = RandomString(20000, 5);
	Reply r = Exchange(port_, Upload(blob, "Content-Type: application/x-www-form-urlencoded\r\n"));
	EXPECT_EQ(r.status, 415) << r.head;
	r = Exchange(port_, Upload(blob, "Content-Type: text/plain\r\n"));
	EXPECT_EQ(r.status, 415) << r.head;
	r = Exchange(port_, Upload(blob, "Content-Type: Multipart/Form-Data; boundary=XyZ\r\n"));
	EXPECT_EQ(r.status, 415) << r.head;
	r = Exchange(port_, Upload(blob, "Content-Type: application/octet-stream\r\nContent-Encoding: gzip\r\n"));
	EXPECT_EQ(r.status, 415) << r.head;
	EXPECT_EQ(StoredBlobs(store_.path()), 0u);
	// Accepted: no type, application/octet-stream (with parameters), multipart/form-data with a field "file".
	r = Exchange(port_, Upload(blob, ""));
	EXPECT_EQ(r.status, 200) << r.head;
	EXPECT_EQ(r.body, "{\"cid\":\"" + CidOf(blob) + "\"}");
	const std::string blob2 = RandomString(20000, 6);
	r = Exchange(port_, Upload(blob2, "Content-Type: Application/Octet-Stream; foo=bar\r\n"));
	EXPECT_EQ(r.status, 200) << r.head;
	EXPECT_EQ(r.body, "{\"cid\":\"" + CidOf(blob2) + "\"}");
	const std::string blob3 = RandomString(20000, 7);
	const std::string form = "--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
	                         "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b\"\r\n"
	                         "Content-Type: application/octet-stream\r\n\r\n" +
	                         blob3 + "\r\n--XyZ--\r\n";
	r = Exchange(port_, Upload(form, "Content-Type: multipart/form-data; boundary=XyZ\r\n"));
	EXPECT_EQ(r.status, 200) << r.head;
	EXPECT_EQ(r.body, "{\"cid\":\"" + CidOf(blob3) + "\"}");
	r = Exchange(port_, Upload("--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nhello\r\n--XyZ--\r\n",
	                           "Content-Type: multipart/form-data; boundary=XyZ\r\n"));
	EXPECT_EQ(r.status, 400) << r.head;
	EXPECT_EQ(StoredBlobs(store_.path()), 3u);
}

} // namespace
} // namespace s5v::s5
