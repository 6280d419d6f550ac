// GUCs under the reserved prefix s5vector.* (query knobs now; S5 connection and worker settings later).
extern "C" {
#include "postgres.h"

#include <limits.h>

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

namespace s5v::pg {

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
}

} // namespace s5v::pg
