// GUC variables (plain C globals, read by the access method).
#pragma once

extern int s5v_ef_search;
extern bool s5v_iterative_scan;
extern int s5v_max_scan_tuples;
extern int s5v_probes;
extern int s5v_max_probes;
extern double s5v_scan_mem_multiplier;

// S5 (offload, docs/s5.md "Settings").
extern char *s5v_s5_url;
extern char *s5v_s5_auth_token;
extern int s5v_s5_connect_timeout_ms;
extern int s5v_s5_timeout_ms;
extern int s5v_s5_retries;
extern int s5v_cache_size_kb;
extern int s5v_gc_grace_s;
extern int s5v_on_s5_error;
#define S5V_ON_S5_ERROR_ERROR 0
#define S5V_ON_S5_ERROR_WARNING 1

namespace s5v::pg {
// Is `url` a usable S5 node address (empty allowed)? On false, *why says what is wrong (static text).
bool S5UrlValid(const char *url, const char **why);
} // namespace s5v::pg
