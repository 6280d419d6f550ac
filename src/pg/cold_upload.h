// CREATE INDEX's direct upload of the cold part (docs/s5.md "CREATE INDEX with S5"): with s5vector.s5_url set and the
// index's offload option on, the second table scan's cold rows do not go to row pages: they are sorted by list
// (tuplesort, bounded by maintenance_work_mem, spilling to temporary files), then each list is cut into parts of
// near-equal size (at most one part page's rows each, RowsPerPart), each part encoded, encrypted and uploaded
// (EncodeAndUploadSegment, no lock held) and only its part page (TIDs, ages, flags, CID) written to the index. Every
// cold row goes up: a list's last part may be small (compaction merges small parts later). No upload intent is
// logged in the index (an aborted build drops the index and its queue with it): each blob goes to the build journal
// (build_journal.h) before its upload, from which s5vector_gc_dropped collects the uploads of builds that did not
// commit. Plain PostgreSQL code (may ereport). Include after the PostgreSQL headers.
#pragma once

#include "pg/cold_store.h"

// Progress phase: S5V_PHASE_COLD_UPLOAD (cold_build.h), "uploading segments".

namespace s5v::pg {

struct ColdUploadState;

// NULL when the build writes its cold rows to row pages: no s5_url, offload = off, or a metric without a segment
// format (l1). `lists`: the trained lists (> 0).
ColdUploadState *ColdUploadBegin(Relation index, const IndexInfoCache &info, uint32 lists, Size memory_limit);
// One cold row of a trained list (copied into the sort).
void ColdUploadAdd(ColdUploadState *u, uint32 list, const ItemPointerData *tid, int64 age, uint8 row_flags,
                   const float *vec);
// After the scan: sort, upload list by list, write the part pages (no WAL: the build logs every page at its end).
// Raises on S5 failures (08006 connection failure, XX001 a node answering another CID). Returns the rows written.
int64 ColdUploadFinish(ColdUploadState *u, Relation index, const ColdAppendTarget &target);

} // namespace s5v::pg
