// GUC variables (plain C globals, read by the access method).
#pragma once

extern int s5v_ef_search;
// s5vector.iterative_scan (pgvector's values): nonzero means the scan widens when asked for more rows.
#define S5V_ITERATIVE_OFF 0
#define S5V_ITERATIVE_RELAXED 1
#define S5V_ITERATIVE_STRICT 2
extern int s5v_iterative_scan;
extern int s5v_max_scan_tuples;
extern int s5v_probes;
extern int s5v_max_probes;
extern double s5v_scan_mem_multiplier;
// Background worker (src/pg/worker.cpp): all PGC_SIGHUP, read again on reload.
extern int s5v_naptime; // seconds between rounds
extern bool s5v_worker_enabled;
extern int s5v_max_rows_per_round;   // rows a step may move per index per round
extern int s5v_worker_lock_timeout;  // milliseconds: the worker's lock_timeout
extern double s5v_worker_cost_delay; // milliseconds: the worker's cost-based delay (0: none, -1: autovacuum's)
extern int s5v_worker_cost_limit;    // the worker's cost limit (-1: autovacuum's)

// S5 (offload, docs/s5.md "Settings").
extern char *s5v_s5_url;
extern char *s5v_s5_auth_token;
extern char *s5v_s5_auth_token_file;
extern int s5v_s5_connect_timeout_ms;
extern int s5v_s5_timeout_ms;
extern int s5v_s5_retries;
extern int s5v_cache_size_kb;
extern int s5v_fetch_threads;
extern int s5v_gc_grace_s;
extern int s5v_on_s5_error;
#define S5V_ON_S5_ERROR_ERROR 0
#define S5V_ON_S5_ERROR_WARNING 1

namespace s5v::pg {
// Is `url` a usable S5 node address (empty allowed)? On false, *why says what is wrong (static text).
bool S5UrlValid(const char *url, const char **why);
} // namespace s5v::pg
