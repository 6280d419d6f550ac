// Access method callbacks (one file per callback group: am_build, am_insert, am_scan, am_vacuum).
#pragma once

extern "C" {
#include "access/amapi.h"
}

#define S5V_PHASE_LOAD 2
#define S5V_PHASE_WRITE 3

namespace s5v::pg {

IndexBuildResult *Build(Relation heap, Relation index, IndexInfo *indexInfo);
void BuildEmpty(Relation index);
bool Insert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid, Relation heap,
            IndexUniqueCheck checkUnique, bool indexUnchanged, IndexInfo *indexInfo);
IndexBulkDeleteResult *BulkDelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats, IndexBulkDeleteCallback callback,
                                  void *callback_state);
IndexBulkDeleteResult *VacuumCleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats);
IndexScanDesc BeginScan(Relation index, int nkeys, int norderbys);
void ReScan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys);
bool GetTuple(IndexScanDesc scan, ScanDirection dir);
void EndScan(IndexScanDesc scan);

// Repair live elements the graph no longer reaches (after VACUUM, after a build that went on disk).
void ReconnectUnreachable(Relation index, const struct IndexInfoCache &info, BufferAccessStrategy strategy);

} // namespace s5v::pg
