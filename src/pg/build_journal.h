// The build journal (docs/s5.md "CREATE INDEX with S5"): the blobs a build uploads before its index exists. A build
// that aborts (an error, a cancel, ROLLBACK, ROLLBACK TO a savepoint before it) or crashes takes its index, and with
// it every record of those blobs, away: they would be orphans on the node forever. So each blob is first written to a
// file outside any transaction, $PGDATA/s5vector_build_journal/<database>.<tablespace>.<relfilenode>.journal, flushed
// before the upload starts; the file is removed when the build's transaction commits (the index then references its
// blobs) and kept otherwise. While the build runs, its backend holds an exclusive flock on the file (the kernel drops
// it when the process ends, kill -9 included). Collection (CollectBuildJournals, run by s5vector_gc_dropped and the
// worker's gc_dropped step) deletes the blobs of journals no build holds, older than s5vector.gc_grace, whose storage
// no relation of the database has, then the file. Plain PostgreSQL code (may ereport). Include after the PostgreSQL
// headers.
#pragma once

extern "C" {
#include "utils/rel.h"
#include "utils/timestamp.h"
}

namespace s5v::pg {

// Record one blob (its BLAKE3 hash and size) that the build of `index` is about to upload: appended to the build's
// journal and flushed (fsync) before this returns. The first call of a build creates the journal. Refused inside a
// transaction that is then prepared (PREPARE TRANSACTION): a prepared build's blobs could not be told from orphans.
void BuildJournalRecord(Relation index, const uint8 *hash, uint64 size);

// Collect the journals of this database's ended builds that left no index (see above), deleting at most max_blobs
// blobs on S5. Returns the blobs the node deleted (a blob it no longer has is not counted).
int64 CollectBuildJournals(int64 max_blobs, TimestampTz cutoff);

// The journal directory, for tests and docs: DataDir/s5vector_build_journal.
const char *BuildJournalDir();

} // namespace s5v::pg
