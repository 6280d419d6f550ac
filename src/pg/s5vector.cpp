// Module entry: PG_MODULE_MAGIC and _PG_init (GUCs, reloptions, the background worker, the blob ledger's hook).
extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"
}

#include "pg/blob_ledger.h"
#include "pg/guard.h"
#include "pg/s5vector.h"
#include "pg/worker.h"

extern "C" {
PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

void _PG_init(void) {
	s5v::pg::InitGuard();
	s5v::pg::InitIndexOptions();
	s5v::pg::InitGucs();
	s5v::pg::InitWorker();     // the launcher and its shared memory, only when preloaded
	s5v::pg::InitBlobLedger(); // preloaded or not: dropped indexes leave their blobs to the ledger
	MarkGUCPrefixReserved("s5vector");
}
