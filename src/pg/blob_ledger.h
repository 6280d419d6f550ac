// The blob ledger (docs/s5.md "Dropped, rebuilt and truncated indexes"): the blobs an index references or queues on
// S5 are copied into the table s5vector_dropped_blobs, in the transaction of the command, before its pages go (DROP,
// REINDEX, TRUNCATE, CLUSTER, VACUUM FULL, table rewrites), and collected after s5vector.gc_grace. Plain PostgreSQL
// code (may ereport). Include after the PostgreSQL headers.
#pragma once

extern "C" {
#include "utils/rel.h"
}

namespace s5v::pg {

// From _PG_init (preloaded or not): the object access hook that tracks dropped indexes and guards the ledger.
void InitBlobLedger();

// From ambuild: when the index is being rebuilt (REINDEX and every command that rebuilds indexes through it), the
// blobs of its old storage (still on disk until commit) go to the ledger. Does nothing for a new index.
void TrackRebuiltIndexBlobs(Relation index);

// Collection: ledger entries older than s5vector.gc_grace whose storage is gone are deleted on S5 and removed from
// the ledger (after the node confirmed), at most max_blobs of them. Returns the blobs the node deleted. 0 without
// s5vector.s5_url, with a negative gc_grace or without the ledger; 25006 during recovery.
int64 CollectDroppedBlobs(int64 max_blobs);

} // namespace s5v::pg
