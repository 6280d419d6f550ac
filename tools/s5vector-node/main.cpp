// s5vector-node: a small S5 node implementing the reference portal's HTTP subset, with optional misbehaviour.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "core/s5/cid.h"
#include "store.h"

namespace {

constexpr const char *kVersion = "s5vector-node 0.1.0";

struct Options {
	std::string host = "127.0.0.1";
	int port = 5050;
	std::string store;
	std::string auth_token;
	long delay_ms = 0;
	double fail_rate = 0;
	double drop_rate = 0;
	double corrupt_rate = 0;
	uint64_t seed = 1;
	size_t max_blob_size = size_t{1} << 30;
	size_t threads = 32;
};

void Usage() {
	std::fprintf(stderr,
	             "usage: s5vector-node --listen HOST:PORT --store DIR [--auth-token TOKEN]\n"
	             "       [--delay-ms N] [--fail-rate P] [--drop-rate P] [--corrupt-rate P] [--seed N]\n"
	             "       [--max-blob-size BYTES] [--threads N]\n"
	             "PORT 0 picks a free port; the chosen address is printed on stdout.\n"
	             "Misbehaviour (for tests): --delay-ms adds latency to every request, --fail-rate answers 500,\n"
	             "--drop-rate closes the connection without an answer, --corrupt-rate flips a byte in downloads\n"
	             "and returns a wrong CID from uploads. Rates are probabilities in [0, 1].\n");
}

bool ParseRate(const char *s, double *out) {
	char *end = nullptr;
	double v = std::strtod(s, &end);
	if (!end || *end || !(v >= 0 && v <= 1))
		return false;
	*out = v;
	return true;
}

bool ParseUnsigned(const char *s, unsigned long long *out) {
	char *end = nullptr;
	errno = 0;
	unsigned long long v = std::strtoull(s, &end, 10);
	if (!end || *end || errno || *s == '-')
		return false;
	*out = v;
	return true;
}

bool ParseArgs(int argc, char **argv, Options *o) {
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		if (a == "--help" || a == "-h")
			return false;
		if (i + 1 >= argc) {
			std::fprintf(stderr, "s5vector-node: %s needs a value\n", a.c_str());
			return false;
		}
		const char *v = argv[++i];
		unsigned long long n = 0;
		if (a == "--listen") {
			std::string s = v;
			size_t colon = s.rfind(':');
			if (colon == std::string::npos || !ParseUnsigned(s.c_str() + colon + 1, &n) || n > 65535)
				return false;
			o->host = s.substr(0, colon);
			o->port = static_cast<int>(n);
		} else if (a == "--store") {
			o->store = v;
		} else if (a == "--auth-token") {
			o->auth_token = v;
		} else if (a == "--delay-ms" && ParseUnsigned(v, &n)) {
			o->delay_ms = static_cast<long>(n);
		} else if (a == "--fail-rate" && ParseRate(v, &o->fail_rate)) {
		} else if (a == "--drop-rate" && ParseRate(v, &o->drop_rate)) {
		} else if (a == "--corrupt-rate" && ParseRate(v, &o->corrupt_rate)) {
		} else if (a == "--seed" && ParseUnsigned(v, &n)) {
			o->seed = n;
		} else if (a == "--max-blob-size" && ParseUnsigned(v, &n) && n > 0) {
			o->max_blob_size = static_cast<size_t>(n);
		} else if (a == "--threads" && ParseUnsigned(v, &n) && n > 0 && n <= 1024) {
			o->threads = static_cast<size_t>(n);
		} else {
			std::fprintf(stderr, "s5vector-node: bad option %s %s\n", a.c_str(), v);
			return false;
		}
	}
	return !o->store.empty();
}

// Seeded randomness shared by the worker threads (tests reproduce a run with --seed).
class Dice {
public:
	explicit Dice(uint64_t seed) : rng_(seed) {}
	bool Roll(double p) {
		if (p <= 0)
			return false;
		std::lock_guard<std::mutex> lock(mu_);
		return std::uniform_real_distribution<double>(0, 1)(rng_) < p;
	}
	size_t Below(size_t n) {
		std::lock_guard<std::mutex> lock(mu_);
		return std::uniform_int_distribution<size_t>(0, n - 1)(rng_);
	}

private:
	std::mutex mu_;
	std::mt19937_64 rng_;
};

// Closes the client's connection without an answer: find our socket whose peer is the request's remote end.
// cpp-httplib does not expose the socket to handlers; scanning our descriptors is cheap for a test node.
void DropConnection(const httplib::Request &req) {
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return;
	while (dirent *e = readdir(d)) {
		int fd = std::atoi(e->d_name);
		if (fd <= 2)
			continue;
		sockaddr_storage ss{};
		socklen_t len = sizeof(ss);
		if (getpeername(fd, reinterpret_cast<sockaddr *>(&ss), &len) != 0)
			continue;
		char host[INET6_ADDRSTRLEN] = {};
		int port = -1;
		if (ss.ss_family == AF_INET) {
			auto *sin = reinterpret_cast<sockaddr_in *>(&ss);
			inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
			port = ntohs(sin->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			auto *sin6 = reinterpret_cast<sockaddr_in6 *>(&ss);
			inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
			port = ntohs(sin6->sin6_port);
		}
		if (port == req.remote_port && req.remote_addr == host) {
			linger lg{1, 0}; // reset, like a crashed peer
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			shutdown(fd, SHUT_RDWR);
			break;
		}
	}
	closedir(d);
}

bool Authorized(const httplib::Request &req, const std::string &token) {
	if (token.empty())
		return true;
	if (req.get_header_value("Authorization") == "Bearer " + token)
		return true;
	if (req.has_param("auth_token") && req.get_param_value("auth_token") == token)
		return true;
	const std::string cookie = req.get_header_value("Cookie");
	const std::string want = "s5-auth-token=" + token;
	size_t p = cookie.find(want);
	return p != std::string::npos && (p == 0 || cookie[p - 1] == ' ' || cookie[p - 1] == ';') &&
	       (p + want.size() == cookie.size() || cookie[p + want.size()] == ';');
}

void Text(httplib::Response &res, int status, const std::string &body) {
	res.status = status;
	res.set_content(body, "text/plain");
}

// cpp-httplib 0.11 listens with a backlog of 5: a burst of parallel connections (the client fetches the
// probes of one query at once) would see SYNs dropped and a 1 s retransmit. Raise it after binding.
class Server : public httplib::Server {
public:
	void RaiseBacklog() { ::listen(svr_sock_, 1024); }
};

std::atomic<httplib::Server *> g_server{nullptr};

} // namespace

int main(int argc, char **argv) {
	Options opt;
	if (!ParseArgs(argc, argv, &opt)) {
		Usage();
		return 2;
	}
	s5v::node::BlobStore store;
	if (s5v::Status st = store.Open(opt.store); !st.ok()) {
		std::fprintf(stderr, "s5vector-node: %s\n", st.message().c_str());
		return 1;
	}

	// SIGTERM/SIGINT are taken by a waiting thread that stops the server; SIGPIPE is ignored.
	signal(SIGPIPE, SIG_IGN);
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

	Server svr;
	Dice dice(opt.seed);
	const size_t threads = opt.threads;
	svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
	svr.set_payload_max_length(opt.max_blob_size);
	svr.set_keep_alive_max_count(1000);
	svr.set_tcp_nodelay(true); // small answers (upload JSON) must not wait for a delayed ACK

	svr.set_pre_routing_handler([&](const httplib::Request &req, httplib::Response &res) {
		if (opt.delay_ms > 0)
			std::this_thread::sleep_for(std::chrono::milliseconds(opt.delay_ms));
		if (dice.Roll(opt.drop_rate)) {
			DropConnection(req);
			res.status = 500;
			return httplib::Server::HandlerResponse::Handled;
		}
		if (dice.Roll(opt.fail_rate)) {
			Text(res, 500, "injected failure");
			return httplib::Server::HandlerResponse::Handled;
		}
		if (!Authorized(req, opt.auth_token)) {
			Text(res, 401, "unauthorized");
			return httplib::Server::HandlerResponse::Handled;
		}
		return httplib::Server::HandlerResponse::Unhandled;
	});

	svr.Get("/s5/version", [&](const httplib::Request &, httplib::Response &res) {
		res.set_content(std::string("{\"node\":\"") + kVersion + "\"}", "application/json");
	});

	svr.Post("/s5/upload", [&](const httplib::Request &req, httplib::Response &res) {
		const std::string *body = &req.body;
		if (req.is_multipart_form_data()) {
			if (!req.has_file("file"))
				return Text(res, 400, "multipart upload needs a field named file");
			body = &req.files.find("file")->second.content;
		}
		if (body->empty())
			return Text(res, 400, "refusing to store an empty blob");
		s5v::s5::BlobId id;
		if (s5v::Status st = store.Put(*body, &id); !st.ok())
			return Text(res, 500, st.message());
		if (dice.Roll(opt.corrupt_rate))
			id.hash[dice.Below(id.hash.size())] ^= 0x01; // lie about the CID
		res.set_content("{\"cid\":\"" + s5v::s5::RawCidText(id) + "\"}", "application/json");
	});

	auto serve_blob = [&](const httplib::Request &req, httplib::Response &res) {
		s5v::s5::BlobId id;
		if (!s5v::s5::ParseCid(req.matches[1].str(), &id).ok())
			return Text(res, 400, "malformed CID");
		std::string bytes;
		if (s5v::Status st = store.Get(id, &bytes); !st.ok())
			return Text(res, st.code() == s5v::StatusCode::NotFound ? 404 : 500, st.message());
		if (!bytes.empty() && dice.Roll(opt.corrupt_rate))
			bytes[dice.Below(bytes.size())] ^= 0x20;
		// cpp-httplib answers a Range header with 206 and Content-Range from this whole body.
		res.set_content(std::move(bytes), "application/octet-stream");
	};
	svr.Get("/s5/download/([^/]+)", serve_blob);
	svr.Get("/([^/]+)", serve_blob);

	svr.Delete("/s5/delete/([^/]+)", [&](const httplib::Request &req, httplib::Response &res) {
		s5v::s5::BlobId id;
		if (!s5v::s5::ParseCid(req.matches[1].str(), &id).ok())
			return Text(res, 400, "malformed CID");
		s5v::Status st = store.Remove(id);
		if (!st.ok())
			return Text(res, st.code() == s5v::StatusCode::NotFound ? 404 : 500, st.message());
		Text(res, 200, "deleted");
	});

	svr.Post("/s5/pin/([^/]+)", [&](const httplib::Request &req, httplib::Response &res) {
		s5v::s5::BlobId id;
		if (!s5v::s5::ParseCid(req.matches[1].str(), &id).ok())
			return Text(res, 400, "malformed CID");
		if (!store.Has(id))
			return Text(res, 404, "no such blob");
		Text(res, 200, "pinned");
	});

	int port = opt.port;
	if (port == 0) {
		port = svr.bind_to_any_port(opt.host);
		if (port < 0) {
			std::fprintf(stderr, "s5vector-node: cannot listen on %s\n", opt.host.c_str());
			return 1;
		}
	} else if (!svr.bind_to_port(opt.host, port)) {
		std::fprintf(stderr, "s5vector-node: cannot listen on %s:%d\n", opt.host.c_str(), port);
		return 1;
	}
	svr.RaiseBacklog();
	std::printf("s5vector-node listening on http://%s:%d\n", opt.host.c_str(), port);
	std::fflush(stdout);

	g_server = &svr;
	std::thread stopper([&sigs] {
		int sig = 0;
		sigwait(&sigs, &sig);
		if (httplib::Server *s = g_server.load())
			s->stop();
	});
	bool ok = svr.listen_after_bind();
	g_server = nullptr;
	// Wake the stopper if the server ended on its own.
	pthread_kill(stopper.native_handle(), SIGTERM);
	stopper.join();
	return ok ? 0 : 1;
}
