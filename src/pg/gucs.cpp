// GUCs under the reserved prefix s5vector.* (query knobs now; S5 connection and worker settings later).
extern "C" {
#include "postgres.h"

#include <ctype.h>
#include <limits.h>
#include <string.h>

#include "utils/guc.h"
}

#include "pg/s5vector.h"
#include "pg/gucs.h"

int s5v_ef_search = 40;
int s5v_iterative_scan = S5V_ITERATIVE_STRICT;

namespace {
// pgvector's values; the old boolean's spellings stay accepted (hidden): on/true/yes/1 = strict_order (what the
// boolean's "on" became), off/false/no/0 = off.
const struct config_enum_entry iterative_scan_options[] = {
    {"off", S5V_ITERATIVE_OFF, false},
    {"relaxed_order", S5V_ITERATIVE_RELAXED, false},
    {"strict_order", S5V_ITERATIVE_STRICT, false},
    {"on", S5V_ITERATIVE_STRICT, true},
    {"true", S5V_ITERATIVE_STRICT, true},
    {"yes", S5V_ITERATIVE_STRICT, true},
    {"1", S5V_ITERATIVE_STRICT, true},
    {"false", S5V_ITERATIVE_OFF, true},
    {"no", S5V_ITERATIVE_OFF, true},
    {"0", S5V_ITERATIVE_OFF, true},
    {nullptr, 0, false},
};
} // namespace
int s5v_max_scan_tuples = 20000;
// Cold tier (IVF lists).
int s5v_probes = 10;
int s5v_max_probes = 0;
double s5v_scan_mem_multiplier = 1.0;
// Background worker.
int s5v_naptime = 60;
bool s5v_worker_enabled = true;
int s5v_max_rows_per_round = 10000;
int s5v_worker_lock_timeout = 1000;
double s5v_worker_cost_delay = 0;
int s5v_worker_cost_limit = -1;
// S5.
char *s5v_s5_url = nullptr;
char *s5v_s5_auth_token = nullptr;
char *s5v_s5_auth_token_file = nullptr;
int s5v_s5_connect_timeout_ms = 5000;
int s5v_s5_timeout_ms = 60000;
int s5v_s5_retries = 3;
int s5v_cache_size_kb = 1024 * 1024;
int s5v_fetch_threads = -1;
int s5v_gc_grace_s = 7 * 24 * 3600;
int s5v_on_s5_error = S5V_ON_S5_ERROR_ERROR;

namespace s5v::pg {

namespace {

const struct config_enum_entry kOnS5Error[] = {
    {"error", S5V_ON_S5_ERROR_ERROR, false}, {"warning", S5V_ON_S5_ERROR_WARNING, false}, {nullptr, 0, false}};

bool CheckS5Url(char **newval, void **extra, GucSource source) {
	const char *why = nullptr;
	if (S5UrlValid(*newval, &why))
		return true;
	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errdetail("%s", why);
	GUC_check_errhint("Use http://HOST[:PORT] or https://HOST[:PORT] (no path, no credentials), or an empty string.");
	return false;
}

} // namespace

// http(s)://host[:port] with an optional trailing slash: no user info (the token has its own setting), no path,
// query or fragment, no whitespace or control characters, a port of 1..65535.
bool S5UrlValid(const char *url, const char **why) {
	if (url == nullptr || url[0] == '\0')
		return true;
	const char *p;
	if (strncmp(url, "http://", 7) == 0)
		p = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		p = url + 8;
	else {
		*why = "The address must start with http:// or https://.";
		return false;
	}
	if (strchr(p, '@') != nullptr) {
		*why = "The address must not hold credentials: set s5vector.s5_auth_token.";
		return false;
	}
	const char *host = p;
	bool bracket = *p == '[';
	if (bracket) {
		while (*p && *p != ']')
			p++;
		if (*p != ']') {
			*why = "An IPv6 address lacks its closing bracket.";
			return false;
		}
		p++;
	} else {
		while (*p && (isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_'))
			p++;
	}
	if (p == host || (bracket && p - host < 3)) {
		*why = "The address has no host.";
		return false;
	}
	if (*p == ':') {
		p++;
		long port = 0;
		const char *digits = p;
		while (*p >= '0' && *p <= '9' && port <= 65535)
			port = port * 10 + (*p++ - '0');
		if (p == digits || port < 1 || port > 65535) {
			*why = "The port must be a number from 1 to 65535.";
			return false;
		}
	}
	if (*p == '/' && p[1] == '\0')
		p++;
	if (*p != '\0') {
		*why = "The address must not have a path, query, fragment or other characters after the host and port.";
		return false;
	}
	return true;
}

void InitGucs() {
	DefineCustomIntVariable("s5vector.ef_search", "Size of the candidate list of a hot-tier (HNSW) search.",
	                        "Larger values find more of the true nearest neighbours and are slower.", &s5v_ef_search,
	                        40, 1, 1000, PGC_USERSET, 0, nullptr, nullptr, nullptr);
	DefineCustomEnumVariable("s5vector.iterative_scan",
	                         "Widen an index scan when the executor asks for more rows than the first pass found.",
	                         "off: at most the first pass (ef_search graph candidates, probes lists); strict_order "
	                         "(default): widen, rows in exact distance order; relaxed_order: widen, rows in the "
	                         "order they are found (faster, may be slightly out of order).",
	                         &s5v_iterative_scan, S5V_ITERATIVE_STRICT, iterative_scan_options, PGC_USERSET, 0, nullptr,
	                         nullptr, nullptr);
	// pgvector's hnsw.max_scan_tuples: approximate (elements whose distance was computed), not applied to the first
	// pass; at the limit the scan returns what it had found and stops.
	DefineCustomIntVariable("s5vector.max_scan_tuples", "Upper bound on the elements an iterative scan visits.",
	                        "The scan stops widening after visiting this many elements and returns the candidates it "
	                        "had found; the first pass (ef_search) always completes.",
	                        &s5v_max_scan_tuples, 20000, 1, INT_MAX, PGC_USERSET, 0, nullptr, nullptr, nullptr);
	// pgvector's hnsw.scan_mem_multiplier (same range as hash_mem_multiplier).
	DefineCustomRealVariable("s5vector.scan_mem_multiplier",
	                         "Memory an iterative scan may use, as a multiple of work_mem.",
	                         "The scan stops widening once its search buffers reach work_mem times this, like "
	                         "max_scan_tuples.",
	                         &s5v_scan_mem_multiplier, 1.0, 1.0, 1000.0, PGC_USERSET, 0, nullptr, nullptr, nullptr);
	// Cold tier.
	DefineCustomIntVariable("s5vector.probes", "Number of cold-tier lists a scan reads first.",
	                        "The lists whose centroids are nearest to the query; larger values find more of the true "
	                        "nearest neighbours and are slower.",
	                        &s5v_probes, 10, 1, 32768, PGC_USERSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("s5vector.max_probes",
	                        "Upper bound on the cold-tier lists an iterative scan reads (0 = every list).",
	                        "When the executor asks for more rows than the probed lists held, the scan reads the next "
	                        "lists, up to this many in all.",
	                        &s5v_max_probes, 0, 0, 32768, PGC_USERSET, 0, nullptr, nullptr, nullptr);
	// Background worker (needs shared_preload_libraries; docs/worker.md). Server-wide, changed by a reload.
	DefineCustomIntVariable("s5vector.naptime", "Time between two rounds of the s5vector background worker.",
	                        "Each database's worker starts a round this long after the previous one started (sooner "
	                        "when the previous round left work behind).",
	                        &s5v_naptime, 60, 1, 86400, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
	DefineCustomBoolVariable("s5vector.worker_enabled", "Run the s5vector background worker.",
	                         "Off: no round starts and the workers exit; the manual functions still work.",
	                         &s5v_worker_enabled, true, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("s5vector.max_rows_per_round",
	                        "Upper bound on the rows one step of the background worker moves in one index per round.",
	                        "Each step runs in a transaction of its own; this bounds how long it lasts.",
	                        &s5v_max_rows_per_round, 10000, 1, 100000000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("s5vector.worker_lock_timeout", "lock_timeout of the background worker's steps.",
	                        "A step that waits longer for a lock (an open cursor's scan, DROP INDEX) fails, is logged, "
	                        "and the next round finishes it.",
	                        &s5v_worker_lock_timeout, 1000, 1, 600000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr,
	                        nullptr);
	DefineCustomRealVariable("s5vector.worker_cost_delay",
	                         "Cost-based delay of the background worker's steps, as autovacuum's.",
	                         "The steps sleep this long each time their page accesses reach worker_cost_limit, so "
	                         "that searches and inserts keep the CPU and the disks. 0 (the default): no delay; -1: "
	                         "autovacuum_vacuum_cost_delay.",
	                         &s5v_worker_cost_delay, 0, -1, 100, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("s5vector.worker_cost_limit",
	                        "Cost limit of the background worker's steps, as autovacuum's.",
	                        "-1: autovacuum_vacuum_cost_limit (whose -1 is vacuum_cost_limit).", &s5v_worker_cost_limit,
	                        -1, -1, 10000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
	// S5 (docs/s5.md "Settings"). The URL and the token are for superusers; the token is never shown to others
	// (GUC_SUPERUSER_ONLY hides it from SHOW and pg_settings) and never put in a message.
	DefineCustomStringVariable("s5vector.s5_url", "Address of the S5 node or portal that holds offloaded segments.",
	                           "Empty: no S5, the cold tier stays in the index.", &s5v_s5_url, "", PGC_SUSET, 0,
	                           CheckS5Url, nullptr, nullptr);
	DefineCustomStringVariable("s5vector.s5_auth_token", "Bearer token sent to the S5 node.", nullptr,
	                           &s5v_s5_auth_token, "", PGC_SUSET, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL, nullptr,
	                           nullptr, nullptr);
	// PostgreSQL logs the new value of every setting that a reload changes ("parameter ... changed to ..."), so a
	// token set in postgresql.conf or with ALTER SYSTEM reaches the server log; a file named here does not.
	DefineCustomStringVariable("s5vector.s5_auth_token_file",
	                           "File whose first line is the bearer token, when s5vector.s5_auth_token is empty.",
	                           "Absolute, or relative to the data directory; read again when the file changes. "
	                           "Keeps the token out of the server log, which shows a changed setting's value.",
	                           &s5v_s5_auth_token_file, "", PGC_SUSET, GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("s5vector.s5_connect_timeout", "Time allowed to connect to the S5 node.", nullptr,
	                        &s5v_s5_connect_timeout_ms, 5000, 1, 600000, PGC_SUSET, GUC_UNIT_MS, nullptr, nullptr,
	                        nullptr);
	DefineCustomIntVariable("s5vector.s5_timeout", "Time allowed for one request to the S5 node, transfer included.",
	                        nullptr, &s5v_s5_timeout_ms, 60000, 1, 3600000, PGC_SUSET, GUC_UNIT_MS, nullptr, nullptr,
	                        nullptr);
	DefineCustomIntVariable("s5vector.s5_retries", "Retries of a request that failed for a transient reason.",
	                        "Connection failures, timeouts, dropped connections and 5xx answers are retried with "
	                        "exponential backoff.",
	                        &s5v_s5_retries, 3, 0, 10, PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("s5vector.cache_size", "Local cache of fetched segments (0 = no cache).",
	                        "Plaintext segments under $PGDATA/s5vector_cache, shared by every backend, evicted by "
	                        "recency.",
	                        &s5v_cache_size_kb, 1024 * 1024, 0, INT_MAX, PGC_SUSET, GUC_UNIT_KB, nullptr, nullptr,
	                        nullptr);
	DefineCustomIntVariable("s5vector.fetch_threads",
	                        "Extra threads that decrypt and decode the segments one query fetched (-1 = automatic).",
	                        "Automatic: one less than the CPUs, fewer when the load average says they are busy, at "
	                        "most 3, and only for batches of at least 1 MB. The threads run plain C++ code, never "
	                        "PostgreSQL's, and end with the fetch.",
	                        &s5v_fetch_threads, -1, -1, 8, PGC_USERSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("s5vector.gc_grace",
	                        "Age after which an unreferenced blob may be deleted from S5 "
	                        "(-1 = never).",
	                        "Covers standbys and base backups that may still reference older states of an index.",
	                        &s5v_gc_grace_s, 7 * 24 * 3600, -1, INT_MAX, PGC_SUSET, GUC_UNIT_S, nullptr, nullptr,
	                        nullptr);
	DefineCustomEnumVariable("s5vector.on_s5_error", "What a query does when it cannot get a segment it needs.",
	                         "error: the query fails; warning: it returns the rows it can reach, with a WARNING.",
	                         &s5v_on_s5_error, S5V_ON_S5_ERROR_ERROR, kOnS5Error, PGC_USERSET, 0, nullptr, nullptr,
	                         nullptr);
}

} // namespace s5v::pg
