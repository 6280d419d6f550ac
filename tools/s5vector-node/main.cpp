// s5vector-node: a small S5 node implementing the reference portal's HTTP subset, with optional misbehaviour.
#include <signal.h>
#include <strings.h>
#include <unistd.h>

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "conn.h"
#include "core/s5/blake3_hash.h"
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
	uint64_t max_blob_size = uint64_t{1} << 30;
	size_t max_connections = 256;
	long header_timeout_ms = 10000;
	long body_timeout_ms = 300000;
	long idle_timeout_ms = 10000;
	long keep_alive_timeout_ms = 5000;
};

void Usage() {
	std::fprintf(stderr,
	             "usage: s5vector-node --listen HOST:PORT --store DIR [--auth-token TOKEN]\n"
	             "       [--delay-ms N] [--fail-rate P] [--drop-rate P] [--corrupt-rate P] [--seed N]\n"
	             "       [--max-blob-size BYTES] [--max-connections N] [--header-timeout-ms N]\n"
	             "       [--body-timeout-ms N] [--idle-timeout-ms N] [--keep-alive-timeout-ms N]\n"
	             "PORT 0 picks a free port; the chosen address is printed on stdout.\n"
	             "Limits (defaults): --max-blob-size 1 GiB per upload; --max-connections 256 served at once (more\n"
	             "get 503; --threads is an older name for it); --header-timeout-ms 10000 for a request line and\n"
	             "headers; --body-timeout-ms 300000 for a body; --idle-timeout-ms 10000 of silence within a read\n"
	             "or a write; --keep-alive-timeout-ms 5000 between requests on a connection.\n"
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

// A timeout: 1 ms to one day.
bool ParseMillis(const char *s, long *out) {
	unsigned long long n = 0;
	if (!ParseUnsigned(s, &n) || n == 0 || n > 86400000ULL)
		return false;
	*out = static_cast<long>(n);
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
		} else if (a == "--max-blob-size" && ParseUnsigned(v, &n) && n > 0 && n <= (uint64_t{1} << 40)) {
			o->max_blob_size = n;
		} else if ((a == "--max-connections" || a == "--threads") && ParseUnsigned(v, &n) && n > 0 && n <= 500) {
			o->max_connections = static_cast<size_t>(n);
		} else if (a == "--header-timeout-ms" && ParseMillis(v, &o->header_timeout_ms)) {
		} else if (a == "--body-timeout-ms" && ParseMillis(v, &o->body_timeout_ms)) {
		} else if (a == "--idle-timeout-ms" && ParseMillis(v, &o->idle_timeout_ms)) {
		} else if (a == "--keep-alive-timeout-ms" && ParseMillis(v, &o->keep_alive_timeout_ms)) {
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

// --- Authentication -------------------------------------------------------------------------------------

// The node's token, kept as its BLAKE3 hash: a presented value is hashed and compared in constant time
// (the time depends on the presented length only, never on how much of the secret it matches).
class TokenCheck {
public:
	explicit TokenCheck(const std::string &token) : enabled_(!token.empty()), want_(Hash(token)) {}
	bool enabled() const { return enabled_; }
	bool Matches(std::string_view presented) const {
		const s5v::s5::Blake3Hash got = Hash(presented);
		volatile unsigned char diff = 0;
		for (size_t i = 0; i < got.size(); i++)
			diff = static_cast<unsigned char>(diff | (got[i] ^ want_[i]));
		return diff == 0;
	}

private:
	static s5v::s5::Blake3Hash Hash(std::string_view s) {
		return s5v::s5::Blake3({reinterpret_cast<const uint8_t *>(s.data()), s.size()});
	}
	bool enabled_;
	s5v::s5::Blake3Hash want_;
};

std::string_view Trim(std::string_view s) {
	while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
		s.remove_prefix(1);
	while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
		s.remove_suffix(1);
	return s;
}

bool IEquals(std::string_view a, std::string_view b) {
	return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// Every credential the request presents must be the token, and there must be at least one: each
// Authorization header (scheme Bearer), each `s5-auth-token` cookie in every Cookie header, each
// `auth_token` query parameter. Conflicting duplicates are refused, whichever comes first.
bool Authorized(const httplib::Request &req, const TokenCheck &token) {
	if (!token.enabled())
		return true;
	size_t presented = 0;
	bool all_match = true;
	auto check = [&](std::string_view v) {
		presented++;
		all_match = token.Matches(v) && all_match; // no early exit: every value is hashed
	};
	for (size_t i = 0, n = req.get_header_value_count("Authorization"); i < n; i++) {
		const std::string header = req.get_header_value("Authorization", i);
		std::string_view v = Trim(header);
		if (v.size() > 7 && IEquals(v.substr(0, 7), "Bearer "))
			check(Trim(v.substr(7)));
		else {
			presented++;
			all_match = false;
		}
	}
	for (size_t i = 0, n = req.get_param_value_count("auth_token"); i < n; i++)
		check(req.get_param_value("auth_token", i));
	for (size_t i = 0, n = req.get_header_value_count("Cookie"); i < n; i++) {
		const std::string cookies = req.get_header_value("Cookie", i);
		std::string_view rest = cookies;
		while (!rest.empty()) {
			size_t semi = rest.find(';');
			std::string_view pair = Trim(rest.substr(0, semi));
			rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
			size_t eq = pair.find('=');
			if (eq != std::string_view::npos && pair.substr(0, eq) == "s5-auth-token")
				check(pair.substr(eq + 1));
		}
	}
	return presented > 0 && all_match;
}

// --- Request screening (before any body byte is read) ----------------------------------------------------

constexpr uint64_t kMaxSmallBody = 64 * 1024; // any request but an upload
constexpr uint64_t kMultipartSlack = 64 * 1024;

void Text(httplib::Response &res, int status, const std::string &body) {
	res.status = status;
	res.set_content(body, "text/plain");
}

bool IsUpload(const httplib::Request &req) {
	return req.method == "POST" && req.path == "/s5/upload";
}

// Bytes an upload may bring on the wire: the blob, plus chunk framing or multipart headers.
uint64_t UploadWireLimit(uint64_t max_blob) {
	return max_blob + max_blob / 8 + kMultipartSlack;
}

// 0 when the request may proceed; otherwise the answer is in res and the status is returned.
// RFC 9110 token characters: what a header name may contain (no spaces before the colon, no folding).
bool IsToken(const std::string &s) {
	static const std::string_view kExtra = "!#$%&'*+-.^_`|~";
	return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
		return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		       kExtra.find(c) != std::string_view::npos;
	});
}

int Screen(const httplib::Request &req, httplib::Response &res, const Options &opt, const TokenCheck &token,
           const s5v::node::Connection &conn) {
	// Syntax a proxy in front may read differently from httplib: bare LF or CR line ends, odd header names.
	if (!conn.header_lines_clean()) {
		Text(res, 400, "request line and headers must end lines with CRLF");
		return res.status;
	}
	for (const auto &h : req.headers) {
		if (!IsToken(h.first)) {
			Text(res, 400, "malformed header name");
			return res.status;
		}
	}
	// Framing: one Transfer-Encoding (chunked only) or Content-Lengths that agree, never both.
	const size_t te_count = req.get_header_value_count("Transfer-Encoding");
	const size_t cl_count = req.get_header_value_count("Content-Length");
	bool chunked = false;
	uint64_t length = 0;
	if (te_count > 1) {
		Text(res, 400, "more than one Transfer-Encoding header");
		return res.status;
	}
	if (te_count == 1) {
		if (!IEquals(Trim(req.get_header_value("Transfer-Encoding")), "chunked")) {
			Text(res, 501, "only Transfer-Encoding: chunked is supported");
			return res.status;
		}
		chunked = true;
	}
	for (size_t i = 0; i < cl_count; i++) {
		const std::string v(Trim(req.get_header_value("Content-Length", i)));
		bool valid = !v.empty() && v.size() <= 18 && v.find_first_not_of("0123456789") == std::string::npos;
		const uint64_t n = valid ? std::strtoull(v.c_str(), nullptr, 10) : 0;
		if (!valid || (i > 0 && n != length)) {
			Text(res, 400, "malformed or conflicting Content-Length");
			return res.status;
		}
		length = n;
	}
	if (chunked && cl_count > 0) {
		Text(res, 400, "both Content-Length and Transfer-Encoding");
		return res.status;
	}
	const bool has_body = chunked || length > 0;
	if (has_body && req.method != "POST" && req.method != "PUT" && req.method != "PATCH" &&
	    !(req.method == "DELETE" && !chunked)) {
		Text(res, 400, "a " + req.method + " request carries no body here");
		return res.status;
	}
	if (req.has_header("Content-Encoding") && !IEquals(Trim(req.get_header_value("Content-Encoding")), "identity")) {
		Text(res, 415, "Content-Encoding is not supported; send the blob's bytes as they are");
		return res.status;
	}
	if (!Authorized(req, token)) {
		Text(res, 401, "unauthorized");
		return res.status;
	}
	if (!IsUpload(req)) {
		if (length > kMaxSmallBody) {
			Text(res, 413, "request body too large");
			return res.status;
		}
		return 0;
	}
	if (!chunked && cl_count == 0) {
		Text(res, 411, "an upload needs Content-Length or Transfer-Encoding: chunked");
		return res.status;
	}
	if (cl_count > 0 && length == 0) {
		Text(res, 400, "refusing to store an empty blob");
		return res.status;
	}
	// Accepted content types: none, application/octet-stream (the raw blob) and multipart/form-data (field
	// "file"). Anything else, application/x-www-form-urlencoded included, is 415.
	const std::string type = req.get_header_value("Content-Type");
	std::string_view base = Trim(std::string_view(type).substr(0, type.find(';')));
	const bool multipart = IEquals(base, "multipart/form-data");
	if (multipart && !req.is_multipart_form_data()) { // httplib's test is case-sensitive: it must agree
		Text(res, 415, "write the content type multipart/form-data in lower case");
		return res.status;
	}
	if (!base.empty() && !IEquals(base, "application/octet-stream") && !multipart) {
		Text(res, 415, "upload content type must be application/octet-stream or multipart/form-data");
		return res.status;
	}
	if (length > opt.max_blob_size + (multipart ? kMultipartSlack : 0)) {
		Text(res, 413, "blob exceeds --max-blob-size");
		return res.status;
	}
	return 0;
}

// --- Ranges ----------------------------------------------------------------------------------------------

// One range per request (RFC 9110 "bytes=first-last", "bytes=first-" or "bytes=-suffix"), clamped to the
// blob. Several ranges, or one that starts past the end, are unsatisfiable: 416 with "bytes */size".
bool ParseOneRange(const std::string &header, uint64_t size, uint64_t *first, uint64_t *last) {
	std::string_view v = Trim(header);
	if (v.size() < 6 || !IEquals(v.substr(0, 6), "bytes="))
		return false;
	v = Trim(v.substr(6));
	if (v.find(',') != std::string_view::npos)
		return false;
	size_t dash = v.find('-');
	if (dash == std::string_view::npos)
		return false;
	std::string_view a = Trim(v.substr(0, dash)), b = Trim(v.substr(dash + 1));
	auto number = [](std::string_view s, uint64_t *out) {
		if (s.empty() || s.find_first_not_of("0123456789") != std::string_view::npos)
			return false;
		uint64_t n = 0;
		for (char c : s) {
			if (n > (UINT64_MAX - 9) / 10) {
				n = UINT64_MAX; // saturate: clamped below
				break;
			}
			n = n * 10 + static_cast<uint64_t>(c - '0');
		}
		*out = n;
		return true;
	};
	uint64_t x = 0, y = 0;
	if (a.empty()) { // suffix: the last y bytes
		if (!number(b, &y) || y == 0 || size == 0)
			return false;
		*first = y >= size ? 0 : size - y;
		*last = size - 1;
		return true;
	}
	if (!number(a, &x) || x >= size)
		return false;
	if (b.empty()) {
		y = size - 1;
	} else if (!number(b, &y) || y < x) {
		return false;
	}
	*first = x;
	*last = std::min(y, size - 1);
	return true;
}

struct FileHandle {
	explicit FileHandle(int f) : fd(f) {}
	~FileHandle() { ::close(fd); }
	int fd;
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

	s5v::node::ConnectionLimits limits;
	limits.header_timeout_ms = opt.header_timeout_ms;
	limits.body_timeout_ms = opt.body_timeout_ms;
	limits.idle_timeout_ms = opt.idle_timeout_ms;
	limits.keep_alive_timeout_ms = opt.keep_alive_timeout_ms;
	s5v::node::NodeServer svr(limits);
	Dice dice(opt.seed);
	const TokenCheck token(opt.auth_token);
	const size_t max_connections = opt.max_connections;
	svr.new_task_queue = [max_connections] { return new s5v::node::ConnectionPool(max_connections); };
	// A second fence behind our own checks (which answer first, and count chunked bodies too).
	svr.set_payload_max_length(UploadWireLimit(opt.max_blob_size));
	svr.set_keep_alive_max_count(limits.keep_alive_max_requests); // the Keep-Alive header; conn.cpp enforces it
	svr.set_keep_alive_timeout(std::max<long>(1, (opt.keep_alive_timeout_ms + 999) / 1000)); // the header only
	svr.set_tcp_nodelay(true); // small answers (upload JSON) must not wait for a delayed ACK

	// Headers are in: check framing, authentication, size and type before any body byte is read, then let
	// the body come (bounded in bytes and time by the connection).
	auto screen = [&](const httplib::Request &req, httplib::Response &res) {
		s5v::node::Connection *conn = s5v::node::CurrentConnection();
		int status = Screen(req, res, opt, token, *conn);
		if (status != 0) {
			if (req.has_header("Content-Length") || req.has_header("Transfer-Encoding"))
				conn->CloseAfterAnswer(); // the body stays unread
			return status;
		}
		conn->BeginBody(IsUpload(req) ? UploadWireLimit(opt.max_blob_size) : kMaxSmallBody + 16 * 1024);
		return 0;
	};
	svr.set_expect_100_continue_handler([&](const httplib::Request &req, httplib::Response &res) {
		int status = screen(req, res);
		return status != 0 ? status : 100;
	});
	svr.set_pre_routing_handler([&](const httplib::Request &req, httplib::Response &res) {
		// Ranges are ours (one per request, served from the file): httplib must not slice any answer.
		const_cast<httplib::Request &>(req).ranges.clear();
		if (opt.delay_ms > 0)
			std::this_thread::sleep_for(std::chrono::milliseconds(opt.delay_ms));
		if (dice.Roll(opt.drop_rate)) {
			s5v::node::CurrentConnection()->Drop();
			res.status = 500;
			return httplib::Server::HandlerResponse::Handled;
		}
		if (dice.Roll(opt.fail_rate)) {
			Text(res, 500, "injected failure");
			s5v::node::CurrentConnection()->CloseAfterAnswer();
			return httplib::Server::HandlerResponse::Handled;
		}
		return screen(req, res) != 0 ? httplib::Server::HandlerResponse::Handled
		                             : httplib::Server::HandlerResponse::Unhandled;
	});
	// Runs for every answer, just before its headers are written.
	svr.set_post_routing_handler([&](const httplib::Request &, httplib::Response &res) {
		s5v::node::Connection *conn = s5v::node::CurrentConnection();
		if (!conn->body_started())
			conn->CloseAfterAnswer(); // httplib refused the request line or headers: resynchronising is guesswork
		if (conn->close_after()) {
			res.headers.erase("Keep-Alive");
			res.headers.erase("Connection");
			res.set_header("Connection", "close");
		}
	});

	svr.Get("/s5/version", [&](const httplib::Request &, httplib::Response &res) {
		res.set_content(std::string("{\"node\":\"") + kVersion + "\"}", "application/json");
	});

	// Uploads are streamed to a temporary file while hashed: memory per upload is a buffer, not the blob.
	svr.Post("/s5/upload",
	         [&](const httplib::Request &req, httplib::Response &res, const httplib::ContentReader &reader) {
		         s5v::node::Connection *conn = s5v::node::CurrentConnection();
		         s5v::node::BlobWriter writer;
		         if (s5v::Status st = store.Begin(&writer); !st.ok()) {
			         conn->CloseAfterAnswer();
			         return Text(res, 500, st.message());
		         }
		         bool too_big = false;
		         s5v::Status write_status;
		         auto take = [&](const char *data, size_t n) {
			         if (writer.size() + n > opt.max_blob_size) {
				         too_big = true;
				         return false;
			         }
			         write_status = writer.Append(data, n);
			         return write_status.ok();
		         };
		         bool ok;
		         const bool multipart = req.is_multipart_form_data();
		         int file_fields = 0;
		         bool in_file = false;
		         uint64_t other_bytes = 0;
		         if (multipart) {
			         ok = reader(
			             [&](const httplib::MultipartFormData &field) {
				             in_file = field.name == "file";
				             return !in_file || ++file_fields == 1;
			             },
			             [&](const char *data, size_t n) {
				             if (in_file)
					             return take(data, n);
				             other_bytes += n; // other fields are ignored, within the small-body limit
				             return other_bytes <= kMaxSmallBody;
			             });
		         } else {
			         ok = reader(take);
		         }
		         if (!ok) {
			         writer.Abort();
			         conn->CloseAfterAnswer();
			         if (conn->failed())
				         return; // already answered (deadline, wire limit) or the client is gone
			         if (too_big)
				         return Text(res, 413, "blob exceeds --max-blob-size");
			         if (!write_status.ok())
				         return Text(res, 500, write_status.message());
			         if (file_fields > 1)
				         return Text(res, 400, "multipart upload with more than one field named file");
			         return Text(res, 400, "malformed request body");
		         }
		         if (multipart && file_fields == 0)
			         return Text(res, 400, "multipart upload needs a field named file");
		         if (writer.size() == 0)
			         return Text(res, 400, "refusing to store an empty blob");
		         s5v::s5::BlobId id;
		         if (s5v::Status st = store.Commit(&writer, &id); !st.ok())
			         return Text(res, 500, st.message());
		         if (dice.Roll(opt.corrupt_rate))
			         id.hash[dice.Below(id.hash.size())] ^= 0x01; // lie about the CID
		         res.set_content("{\"cid\":\"" + s5v::s5::RawCidText(id) + "\"}", "application/json");
	         });

	// Downloads are streamed from the file; an answer costs a 64 KiB buffer whatever its size.
	auto serve_blob = [&](const httplib::Request &req, httplib::Response &res) {
		s5v::s5::BlobId id;
		if (!s5v::s5::ParseCid(req.matches[1].str(), &id).ok())
			return Text(res, 400, "malformed CID");
		int fd = -1;
		if (s5v::Status st = store.OpenBlob(id, &fd); !st.ok())
			return Text(res, st.code() == s5v::StatusCode::NotFound ? 404 : 500, st.message());
		auto file = std::make_shared<FileHandle>(fd);
		const uint64_t size = id.size;
		uint64_t first = 0, last = size == 0 ? 0 : size - 1;
		res.set_header("Accept-Ranges", "bytes");
		const bool ranged = req.has_header("Range");
		if (ranged && (req.get_header_value_count("Range") > 1 ||
		               !ParseOneRange(req.get_header_value("Range"), size, &first, &last))) {
			res.status = 416;
			res.set_header("Content-Range", "bytes */" + std::to_string(size));
			return;
		}
		if (size == 0) {
			res.status = 200;
			return res.set_content("", "application/octet-stream");
		}
		const uint64_t length = last - first + 1;
		uint64_t flip = UINT64_MAX; // absolute offset of an injected corruption
		if (dice.Roll(opt.corrupt_rate))
			flip = first + dice.Below(length);
		res.status = ranged ? 206 : 200;
		if (ranged)
			res.set_header("Content-Range",
			               "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" + std::to_string(size));
		res.set_content_provider(length, "application/octet-stream",
		                         [file, first, flip](size_t offset, size_t n, httplib::DataSink &sink) {
			                         std::vector<char> buf(std::min<size_t>(n, 64 * 1024));
			                         const uint64_t at = first + offset;
			                         ssize_t got = ::pread(file->fd, buf.data(), buf.size(), static_cast<off_t>(at));
			                         if (got <= 0)
				                         return false;
			                         if (flip >= at && flip < at + static_cast<uint64_t>(got))
				                         buf[flip - at] ^= 0x20;
			                         return sink.write(buf.data(), static_cast<size_t>(got));
		                         });
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
		s5v::node::g_stopping = true; // connections end their waits within 100 ms
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
