// Compaction of remote parts (docs/s5.md "Compaction", TIERS.md "Compact"). Plain PostgreSQL code (may ereport):
// call from plain frames, or inside S5V_PG_CALL. Include after the PostgreSQL headers.
#pragma once

#include "pg/offload.h"

namespace s5v::pg {

// When a rewrite is worth it (the rule of docs/s5.md "Compaction", in one place):
// - a part is *dirty* when at least kCompactDeadPercent of its rows are dead (tombstoned by VACUUM);
// - a part is *small* when it has fewer live rows than RowsPerPart() / kCompactSmallDivisor (194 of 778);
// - a *run* is a sequence of adjacent parts of one list's part chain, each dirty or small, whose live rows fit one
//   part page (RowsPerPart()), at most kCompactMaxRunParts parts; a run is rewritten when it holds a dirty part or at
//   least two parts. Its live rows become one new segment (or none when every row is dead).
constexpr uint32 kCompactDeadPercent = 20;
constexpr uint32 kCompactSmallDivisor = 4;
constexpr int kCompactMaxRunParts = 8;

// The worker reads at most kCompactScanFactor * max_rows_per_round rows of part pages (about 10 bytes a row) per round
// to look for runs, resuming where its last round stopped.
constexpr int64 kCompactScanFactor = 16;

// One batch of compaction, as s5vector_compact runs it and the background worker does: rewrite at most max_segments
// runs, and start no new run once the runs done held max_rows rows (old rows, dead ones included: what was fetched;
// a run holds at most kCompactMaxRunParts * RowsPerPart() rows). Returns the live rows rewritten into new segments.
// Returns 0 without doing anything when s5vector.s5_url is empty, the index's offload option is off, it has no
// remote part, or another session holds the offload lock (offload, compaction or collection of this index: skipped
// with a WARNING). With `worker` (the worker's step) the lists are swept a bounded piece per call (part-page rows
// read at most kCompactScanFactor * max_rows), resuming where the last call stopped (this process's memory), and an
// index whose whole sweep found nothing worth it is not read again (beyond its metapages) until its cold counters
// (rows, dead rows, remote rows, segments) change. Without it every list is examined. Raises on S5 failures
// (connection failure, data corrupted). Caller holds at least RowExclusiveLock on the index.
int64 CompactIndex(Relation index, int64 max_segments, int64 max_rows, bool worker);

} // namespace s5v::pg
