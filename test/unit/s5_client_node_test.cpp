// Integration: the S5 client against a real s5vector-node process on loopback, well-behaved and misbehaving.
#include <gtest/gtest.h>

#include <curl/curl.h>

#include <atomic>
#include <random>

#include "core/s5/client.h"
#include "core/s5/multibase.h"
#include "s5_node_process.h"
#include "s5_test_util.h"

#ifndef S5V_NODE_PATH
#error "S5V_NODE_PATH must name the s5vector-node binary"
#endif

namespace s5v::s5 {
namespace {

using test::RandomBytes;

// Raw HTTP for checking the node's answers directly (status, body, one header).
struct HttpAnswer {
	long status = 0;
	std::string body;
	std::string content_range;
};

size_t Collect(char *p, size_t s, size_t n, void *u) {
	static_cast<std::string *>(u)->append(p, s * n);
	return s * n;
}

HttpAnswer Http(const std::string &method, const std::string &url, const std::vector<std::string> &headers = {},
                const std::string *body = nullptr, curl_mime *(*mime)(CURL *) = nullptr) {
	HttpAnswer a;
	CURL *e = curl_easy_init();
	curl_slist *h = nullptr;
	for (const auto &line : headers)
		h = curl_slist_append(h, line.c_str());
	curl_easy_setopt(e, CURLOPT_URL, url.c_str());
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, Collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &a.body);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method.c_str());
	curl_mime *m = nullptr;
	if (body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(body->size()));
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body->data());
	}
	if (mime) {
		m = mime(e);
		curl_easy_setopt(e, CURLOPT_MIMEPOST, m);
	}
	if (curl_easy_perform(e) == CURLE_OK) {
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &a.status);
		curl_header *ch = nullptr;
		if (curl_easy_header(e, "Content-Range", 0, CURLH_HEADER, -1, &ch) == CURLHE_OK)
			a.content_range = ch->value;
	}
	curl_mime_free(m);
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	return a;
}

class FlagCancel final : public CancelToken {
public:
	bool cancelled() const noexcept override { return flag.load(); }
	std::atomic<bool> flag{false};
};

// Cancels itself after a number of polls (the client polls while waiting).
class CountdownCancel final : public CancelToken {
public:
	explicit CountdownCancel(int n) : left_(n) {}
	bool cancelled() const noexcept override { return --left_ < 0; }

private:
	mutable std::atomic<int> left_;
};

class s5_client_node : public ::testing::Test {
protected:
	void SetUp() override { ASSERT_TRUE(node_.Start(S5V_NODE_PATH, store_.path())) << "cannot start the node"; }

	S5ClientOptions Options(const std::string &url) {
		S5ClientOptions o;
		o.base_url = url;
		o.connect_timeout_ms = 2000;
		o.request_timeout_ms = 5000;
		o.backoff_initial_ms = 5;
		o.backoff_max_ms = 40;
		return o;
	}

	std::unique_ptr<S5Client> Client(const S5ClientOptions &o) {
		std::unique_ptr<S5Client> c;
		Status st = S5Client::Create(o, &c);
		EXPECT_TRUE(st.ok()) << st.message();
		return c;
	}

	// Stores blobs through the well-behaved node.
	std::vector<BlobId> Seed(size_t count, size_t size) {
		auto c = Client(Options(node_.url()));
		std::vector<BlobId> ids;
		for (size_t i = 0; i < count; i++) {
			std::vector<uint8_t> data = RandomBytes(size, static_cast<uint32_t>(1000 + i));
			BlobId id;
			Status st = c->Upload(data, &id, never_);
			EXPECT_TRUE(st.ok()) << st.message();
			ids.push_back(id);
			blobs_.push_back(std::move(data));
		}
		return ids;
	}

	test::TempDir store_;
	test::NodeProcess node_;
	NeverCancel never_;
	std::vector<std::vector<uint8_t>> blobs_;
};

TEST_F(s5_client_node, VersionUploadDownloadDelete) {
	auto c = Client(Options(node_.url() + "/"));
	std::string version;
	ASSERT_TRUE(c->Version(&version, never_).ok());
	EXPECT_NE(version.find("\"node\""), std::string::npos);

	for (size_t n : {size_t{1}, size_t{13}, size_t{1000}, size_t{300 * 1024}, size_t{2 << 20}}) {
		std::vector<uint8_t> data = RandomBytes(n, static_cast<uint32_t>(n));
		BlobId id;
		Status st = c->Upload(data, &id, never_);
		ASSERT_TRUE(st.ok()) << st.message();
		EXPECT_EQ(id, BlobIdOf(data));
		// Uploading again is harmless.
		ASSERT_TRUE(c->Upload(data, &id, never_).ok());
		std::vector<uint8_t> back;
		st = c->Download(id, &back, never_);
		ASSERT_TRUE(st.ok()) << st.message();
		EXPECT_EQ(back, data);
	}
	std::vector<uint8_t> data = test::Bytes("delete me");
	BlobId id;
	ASSERT_TRUE(c->Upload(data, &id, never_).ok());
	ASSERT_TRUE(c->Delete(id, never_).ok());
	std::vector<uint8_t> back;
	EXPECT_EQ(c->Download(id, &back, never_).code(), StatusCode::NotFound);
	EXPECT_EQ(c->Delete(id, never_).code(), StatusCode::NotFound);
	EXPECT_TRUE(back.empty());
}

TEST_F(s5_client_node, RefusesEmptyAndOversizedBlobs) {
	S5ClientOptions o = Options(node_.url());
	o.max_blob_size = 1000;
	auto c = Client(o);
	BlobId id;
	EXPECT_EQ(c->Upload({}, &id, never_).code(), StatusCode::InvalidInput);
	EXPECT_EQ(c->Upload(RandomBytes(1001, 1), &id, never_).code(), StatusCode::LimitExceeded);
	BlobId big;
	big.size = 5000;
	std::vector<uint8_t> out;
	EXPECT_EQ(c->Download(big, &out, never_).code(), StatusCode::LimitExceeded);
	// The node's own limit answers 413.
	test::NodeProcess small;
	ASSERT_TRUE(small.Start(S5V_NODE_PATH, store_.path(), {"--max-blob-size", "100"}));
	auto c2 = Client(Options(small.url()));
	EXPECT_EQ(c2->Upload(RandomBytes(200, 2), &id, never_).code(), StatusCode::LimitExceeded);
	EXPECT_TRUE(c2->Upload(RandomBytes(100, 2), &id, never_).ok());
}

TEST_F(s5_client_node, RangedDownload) {
	std::vector<BlobId> ids = Seed(1, 500 * 1024);
	const auto &data = blobs_[0];
	auto c = Client(Options(node_.url()));
	std::vector<uint8_t> part;
	bool verified = false;
	ASSERT_TRUE(c->DownloadRange(ids[0], 1000, 5000, &part, &verified, never_).ok());
	EXPECT_TRUE(verified);
	EXPECT_EQ(part, std::vector<uint8_t>(data.begin() + 1000, data.begin() + 6000));

	S5ClientOptions o = Options(node_.url());
	o.allow_unverified_ranges = true;
	auto cu = Client(o);
	ASSERT_TRUE(cu->DownloadRange(ids[0], data.size() - 10, 10, &part, &verified, never_).ok());
	EXPECT_FALSE(verified); // a 206 answer cannot be checked against the CID
	EXPECT_EQ(part, std::vector<uint8_t>(data.end() - 10, data.end()));

	EXPECT_EQ(c->DownloadRange(ids[0], data.size() - 10, 11, &part, &verified, never_).code(),
	          StatusCode::InvalidInput);
	EXPECT_EQ(c->DownloadRange(ids[0], 0, 0, &part, &verified, never_).code(), StatusCode::InvalidInput);
}

TEST_F(s5_client_node, NodeAnswersPerSpec) {
	std::vector<BlobId> ids = Seed(1, 5000);
	const std::string base = node_.url();
	const std::string cid = RawCidText(ids[0]);
	EXPECT_EQ(Http("GET", base + "/s5/download/" + cid).status, 200);
	EXPECT_EQ(Http("GET", base + "/s5/download/" + BlobCidText(ids[0])).body.size(), 5000u); // v1 form too
	EXPECT_EQ(Http("GET", base + "/s5/download/notacid").status, 400);
	EXPECT_EQ(Http("GET", base + "/s5/download/zzzzzzzz").status, 400);
	BlobId missing = ids[0];
	missing.hash[0] ^= 1;
	EXPECT_EQ(Http("GET", base + "/s5/download/" + RawCidText(missing)).status, 404);
	BlobId wrong_size = ids[0];
	wrong_size.size = 4999;
	EXPECT_EQ(Http("GET", base + "/s5/download/" + RawCidText(wrong_size)).status, 404);
	HttpAnswer r = Http("GET", base + "/" + cid, {"Range: bytes=10-19"});
	EXPECT_EQ(r.status, 206);
	EXPECT_EQ(r.content_range, "bytes 10-19/5000");
	EXPECT_EQ(r.body, std::string(blobs_[0].begin() + 10, blobs_[0].begin() + 20));
	const std::string empty;
	EXPECT_EQ(Http("POST", base + "/s5/upload", {}, &empty).status, 400);
	const std::string hello = "Hello, world!";
	r = Http("POST", base + "/s5/upload", {"Content-Type: application/octet-stream"}, &hello);
	EXPECT_EQ(r.status, 200);
	EXPECT_EQ(r.body, "{\"cid\":\"" + RawCidText(BlobIdOf(test::Bytes(hello))) + "\"}");
	r = Http("POST", base + "/s5/upload", {}, nullptr, [](CURL *e) {
		curl_mime *m = curl_mime_init(e);
		curl_mimepart *p = curl_mime_addpart(m);
		curl_mime_name(p, "file");
		curl_mime_filename(p, "hello.txt");
		curl_mime_data(p, "Hello, world!", CURL_ZERO_TERMINATED);
		return m;
	});
	EXPECT_EQ(r.status, 200);
	EXPECT_EQ(r.body, "{\"cid\":\"" + RawCidText(BlobIdOf(test::Bytes(hello))) + "\"}");
	EXPECT_EQ(Http("POST", base + "/s5/pin/" + cid, {}, &empty).status, 200);
	EXPECT_EQ(Http("POST", base + "/s5/pin/" + RawCidText(missing), {}, &empty).status, 404);
	EXPECT_EQ(Http("DELETE", base + "/s5/delete/bad").status, 400);
	EXPECT_NE(Http("GET", base + "/s5/version").body.find("s5vector-node"), std::string::npos);
}

TEST_F(s5_client_node, BearerTokenAuth) {
	std::vector<BlobId> ids = Seed(1, 100);
	test::NodeProcess secured;
	ASSERT_TRUE(secured.Start(S5V_NODE_PATH, store_.path(), {"--auth-token", "s3cret"}));
	const std::string cid = RawCidText(ids[0]);
	EXPECT_EQ(Http("GET", secured.url() + "/s5/download/" + cid).status, 401);
	EXPECT_EQ(Http("GET", secured.url() + "/s5/download/" + cid, {"Authorization: Bearer wrong"}).status, 401);
	EXPECT_EQ(Http("GET", secured.url() + "/s5/download/" + cid, {"Authorization: Bearer s3cret"}).status, 200);
	EXPECT_EQ(Http("GET", secured.url() + "/s5/download/" + cid + "?auth_token=s3cret").status, 200);
	EXPECT_EQ(Http("GET", secured.url() + "/s5/download/" + cid, {"Cookie: a=b; s5-auth-token=s3cret"}).status, 200);

	std::vector<uint8_t> out;
	auto anonymous = Client(Options(secured.url()));
	auto t0 = std::chrono::steady_clock::now();
	Status st = anonymous->Download(ids[0], &out, never_);
	EXPECT_EQ(st.code(), StatusCode::Unavailable);
	EXPECT_NE(st.message().find("401"), std::string::npos) << st.message();
	EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2)); // not retried
	S5ClientOptions o = Options(secured.url());
	o.auth_token = "s3cret";
	auto authed = Client(o);
	ASSERT_TRUE(authed->Download(ids[0], &out, never_).ok());
	EXPECT_EQ(out, blobs_[0]);
	BlobId id;
	EXPECT_TRUE(authed->Upload(RandomBytes(10, 5), &id, never_).ok());
}

TEST_F(s5_client_node, SurvivesRestart) {
	std::vector<BlobId> ids = Seed(3, 70000);
	EXPECT_EQ(node_.Stop(), 0); // SIGTERM ends it cleanly
	auto c = Client(Options(node_.url()));
	std::vector<uint8_t> out;
	S5ClientOptions o = Options(node_.url());
	o.max_attempts = 2;
	auto down = Client(o);
	EXPECT_EQ(down->Download(ids[0], &out, never_).code(), StatusCode::Unavailable); // nobody listening
	ASSERT_TRUE(node_.Start(S5V_NODE_PATH, store_.path()));
	auto c2 = Client(Options(node_.url()));
	for (size_t i = 0; i < ids.size(); i++) {
		ASSERT_TRUE(c2->Download(ids[i], &out, never_).ok());
		EXPECT_EQ(out, blobs_[i]);
	}
}

TEST_F(s5_client_node, ParallelDownloads) {
	std::vector<BlobId> ids = Seed(20, 64 * 1024);
	BlobId missing = ids[3];
	missing.hash[5] ^= 0x40;
	ids.push_back(missing);
	auto c = Client(Options(node_.url()));
	std::vector<DownloadResult> results;
	Status st = c->DownloadMany(ids, &results, never_);
	EXPECT_EQ(st.code(), StatusCode::NotFound);
	ASSERT_EQ(results.size(), ids.size());
	for (size_t i = 0; i + 1 < ids.size(); i++) {
		ASSERT_TRUE(results[i].status.ok()) << i << results[i].status.message();
		EXPECT_EQ(results[i].data, blobs_[i]);
	}
	EXPECT_EQ(results.back().status.code(), StatusCode::NotFound);
	EXPECT_TRUE(results.back().data.empty());
}

TEST_F(s5_client_node, RetriesInjectedFailures) {
	std::vector<BlobId> ids = Seed(12, 20000);
	test::NodeProcess flaky;
	ASSERT_TRUE(flaky.Start(S5V_NODE_PATH, store_.path(), {"--fail-rate", "0.4", "--seed", "11"}));
	S5ClientOptions o = Options(flaky.url());
	o.max_attempts = 12;
	auto c = Client(o);
	std::vector<DownloadResult> results;
	ASSERT_TRUE(c->DownloadMany(ids, &results, never_).ok());
	for (size_t i = 0; i < ids.size(); i++)
		EXPECT_EQ(results[i].data, blobs_[i]);
	BlobId id;
	EXPECT_TRUE(c->Upload(RandomBytes(3000, 77), &id, never_).ok());

	test::NodeProcess broken;
	ASSERT_TRUE(broken.Start(S5V_NODE_PATH, store_.path(), {"--fail-rate", "1"}));
	o = Options(broken.url());
	o.max_attempts = 3;
	auto cb = Client(o);
	std::vector<uint8_t> out;
	Status st = cb->Download(ids[0], &out, never_);
	EXPECT_EQ(st.code(), StatusCode::Unavailable);
	EXPECT_NE(st.message().find("500"), std::string::npos) << st.message();
	EXPECT_TRUE(out.empty());
}

TEST_F(s5_client_node, RetriesDroppedConnections) {
	std::vector<BlobId> ids = Seed(10, 30000);
	test::NodeProcess dropping;
	ASSERT_TRUE(dropping.Start(S5V_NODE_PATH, store_.path(), {"--drop-rate", "0.4", "--seed", "5"}));
	S5ClientOptions o = Options(dropping.url());
	o.max_attempts = 12;
	auto c = Client(o);
	std::vector<DownloadResult> results;
	Status st = c->DownloadMany(ids, &results, never_);
	ASSERT_TRUE(st.ok()) << st.message();
	for (size_t i = 0; i < ids.size(); i++)
		EXPECT_EQ(results[i].data, blobs_[i]);

	test::NodeProcess dead;
	ASSERT_TRUE(dead.Start(S5V_NODE_PATH, store_.path(), {"--drop-rate", "1"}));
	o = Options(dead.url());
	o.max_attempts = 3;
	auto cd = Client(o);
	std::vector<uint8_t> out;
	EXPECT_EQ(cd->Download(ids[0], &out, never_).code(), StatusCode::Unavailable);
	BlobId id;
	EXPECT_EQ(cd->Upload(RandomBytes(100, 1), &id, never_).code(), StatusCode::Unavailable);
}

TEST_F(s5_client_node, RejectsCorruptBytesAndLyingCids) {
	std::vector<BlobId> ids = Seed(8, 40000);
	test::NodeProcess liar;
	ASSERT_TRUE(liar.Start(S5V_NODE_PATH, store_.path(), {"--corrupt-rate", "1"}));
	auto c = Client(Options(liar.url()));
	std::vector<uint8_t> out;
	EXPECT_EQ(c->Download(ids[0], &out, never_).code(), StatusCode::Corrupt);
	EXPECT_TRUE(out.empty());
	bool verified = true;
	EXPECT_EQ(c->DownloadRange(ids[0], 5, 10, &out, &verified, never_).code(), StatusCode::Corrupt);
	EXPECT_TRUE(out.empty());
	BlobId id;
	EXPECT_EQ(c->Upload(RandomBytes(500, 9), &id, never_).code(), StatusCode::Corrupt);

	// Sometimes lying: every answer is either the right bytes or an error, never wrong bytes.
	test::NodeProcess sometimes;
	ASSERT_TRUE(sometimes.Start(S5V_NODE_PATH, store_.path(), {"--corrupt-rate", "0.5", "--seed", "3"}));
	S5ClientOptions o = Options(sometimes.url());
	o.max_corrupt_attempts = 2;
	auto cs = Client(o);
	int ok = 0, corrupt = 0;
	for (int round = 0; round < 3; round++) {
		std::vector<DownloadResult> results;
		(void)cs->DownloadMany(ids, &results, never_);
		for (size_t i = 0; i < ids.size(); i++) {
			if (results[i].status.ok()) {
				EXPECT_EQ(results[i].data, blobs_[i]);
				ok++;
			} else {
				EXPECT_EQ(results[i].status.code(), StatusCode::Corrupt);
				EXPECT_TRUE(results[i].data.empty());
				corrupt++;
			}
		}
	}
	EXPECT_GT(ok, 0);
	EXPECT_GT(corrupt, 0);
}

TEST_F(s5_client_node, TimeoutsAndCancellation) {
	std::vector<BlobId> ids = Seed(2, 1000);
	test::NodeProcess slow;
	ASSERT_TRUE(slow.Start(S5V_NODE_PATH, store_.path(), {"--delay-ms", "400"}));
	S5ClientOptions o = Options(slow.url());
	o.request_timeout_ms = 100;
	o.max_attempts = 2;
	auto c = Client(o);
	std::vector<uint8_t> out;
	Status st = c->Download(ids[0], &out, never_);
	EXPECT_EQ(st.code(), StatusCode::Unavailable);
	o.request_timeout_ms = 3000;
	auto patient = Client(o);
	ASSERT_TRUE(patient->Download(ids[0], &out, never_).ok());
	EXPECT_EQ(out, blobs_[0]);

	// Cancel during a request that would take 5 s: it must end long before (under the sanitizers too, hence the
	// margin both ways: a cancel that works takes milliseconds, one that does not takes the whole 5 s).
	test::NodeProcess slower;
	ASSERT_TRUE(slower.Start(S5V_NODE_PATH, store_.path(), {"--delay-ms", "5000"}));
	S5ClientOptions so = Options(slower.url());
	so.request_timeout_ms = 10000;
	auto cancellable = Client(so);
	CountdownCancel soon(3);
	out.clear();
	auto t0 = std::chrono::steady_clock::now();
	EXPECT_EQ(cancellable->Download(ids[1], &out, soon).code(), StatusCode::Cancelled);
	EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2500));
	EXPECT_TRUE(out.empty());
	FlagCancel already;
	already.flag = true;
	BlobId id;
	EXPECT_EQ(patient->Upload(RandomBytes(10, 1), &id, already).code(), StatusCode::Cancelled);
	std::vector<DownloadResult> results;
	EXPECT_EQ(patient->DownloadMany(ids, &results, already).code(), StatusCode::Cancelled);
}

TEST(s5_client_options, Validation) {
	std::unique_ptr<S5Client> c;
	S5ClientOptions o;
	o.base_url = "ftp://x";
	EXPECT_EQ(S5Client::Create(o, &c).code(), StatusCode::InvalidInput);
	o.base_url = "http://127.0.0.1:1";
	o.auth_token = "a\r\nX-Evil: 1";
	EXPECT_EQ(S5Client::Create(o, &c).code(), StatusCode::InvalidInput);
	o.auth_token = "";
	o.max_attempts = 0;
	EXPECT_EQ(S5Client::Create(o, &c).code(), StatusCode::InvalidInput);
}

} // namespace
} // namespace s5v::s5
