// Lock tags of an s5vector index and the one lock order every path follows (docs/architecture.md "Locking").
//
// Order (outermost first); a path may skip levels but never takes an outer lock while holding an inner one:
//   1. scan interlock      heavyweight, tag below: ShareLock by every index scan for its whole life;
//                          movers wait for its holders (WaitForScans) holding no other lock of this index
//   2. structure locks     heavyweight: the graph write lock (LockPage on S5V_GRAPH_WRITE_LOCK, index.h),
//                          later the cold lists' locks; graph before lists
//   3. buffer locks        within one WAL record: at most one element page and its far neighbour page (and a
//                          freshly extended page), then the metapage last; never wait for a data page while
//                          holding the metapage;
//                          outside WAL records one buffer at a time (searches, sweeps)
//   4. relation extension  LockRelationForExtension, innermost heavyweight lock (may be taken while buffer
//                          locks are held; nothing is taken while it is held); FSM pages after main-fork pages
// No network I/O, and nothing slow, while 2 (exclusively), 3 or 4 is held (shared/design/TIERS.md).
// Include after the PostgreSQL headers.
#pragma once

extern "C" {
#include "storage/lock.h"
#include "utils/rel.h"
}

namespace s5v::pg {

// The scan interlock's tag: a tuple lock on (database, index, block 0, offset 0). Block 0 is the metapage and
// offset 0 is InvalidOffsetNumber, so no tuple lock of PostgreSQL's ever uses it; it appears in pg_locks as
// locktype 'tuple', relation = the index, page 0, tuple 0. (Not a page lock: PostgreSQL 15 asserts that no
// other heavyweight lock is taken while a page lock is held, and a scan lives across other statements.)
void ScanInterlockTag(Relation index, LOCKTAG *tag);

// Take the scan interlock in ShareLock (never waits on other scans; waits only while a mover holds it, which
// movers do not). It is owned by the top transaction's resource owner, so the release in endscan finds it
// whatever portal or subtransaction the scan ran in, and an aborted scan's lock goes at transaction end.
void LockScanInterlock(Relation index);
void UnlockScanInterlock(Relation index);

// For movers (migration, offload, compaction), between "added at the new place" and "removed from the old
// one": wait until every index scan of `index` that holds the interlock now has ended (WaitForLockers: it waits
// for those scans' transactions, not for scans that start later, which see the row at its new place). Call it
// holding no structure or buffer lock of the index. Under lock_timeout it raises lock_not_available (55P03);
// the caller then leaves the batch added-but-not-removed (duplicates, which scans deduplicate) for a later
// round.
void WaitForScans(Relation index);

// The hot tier's removal lock: one pass that marks, repairs and removes deleted elements at a time (VACUUM's
// BulkDelete and a migration's removal from the graph). Two passes at once would both remove the same tuples (the
// second one, deciding under a share lock, removed line pointers the first had freed and an insert had reused:
// a live element lost) and subtract them twice from the metapage's hot_deleted. ExclusiveLock, held until
// UnlockHotRemoval or the end of the transaction; waits obey lock_timeout (the worker's steps).
void LockHotRemoval(Relation index);
void UnlockHotRemoval(Relation index);

} // namespace s5v::pg
