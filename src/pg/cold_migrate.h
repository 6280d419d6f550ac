// One migration batch (hot -> cold) as a C++ function: s5vector_migrate and the background worker call it.
// Include after the PostgreSQL headers.
#pragma once

extern "C" {
#include "utils/rel.h"
}

namespace s5v::pg {

// Moves up to max_rows hot rows older than the index's window to the cold tier (TIERS.md "Migrate"): add cold,
// WaitForScans, remove from the graph. The caller has opened `index` (RowExclusiveLock), checked that it is an
// s5vector index, the privileges and that the server is not in recovery. Returns the rows moved.
int64 MigrateIndex(Relation index, int64 max_rows);

} // namespace s5v::pg
