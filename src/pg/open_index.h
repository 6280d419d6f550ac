// Opening an index named by an SQL function's argument: the checks every s5vector SQL function makes before it
// touches the index (one place for their errors and SQLSTATEs). Include after the PostgreSQL headers.
#pragma once

extern "C" {
#include "fmgr.h"
#include "storage/lockdefs.h"
#include "utils/rel.h"
}

namespace s5v::pg {

// `index` must be an s5vector index: otherwise it is closed (releasing `lock`) and 42809 is raised.
void CheckOurIndex(Relation index, LOCKMODE lock);
// Open `relid` with `lock`: 42704 when it does not exist, 42809 when it is not an s5vector index.
Relation OpenOurIndex(Oid relid, LOCKMODE lock);
// OpenOurIndex, and the caller must own the index's table (42501): for the functions that change an index.
Relation OpenOwnedIndex(Oid relid, LOCKMODE lock);
// 25006 "cannot <what> during recovery", hint "Run <function> on the primary.", on a standby.
void RefuseDuringRecovery(const char *what, const char *function);
// The optional `max_segments integer` argument number `argno` of s5vector_offload / s5vector_compact: NULL is no
// limit (PG_INT64_MAX), a negative value 22023.
int64 MaxSegmentsArg(FunctionCallInfo fcinfo, int argno);

} // namespace s5v::pg
