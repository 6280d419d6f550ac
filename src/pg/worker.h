// The background worker (docs/worker.md): a launcher that connects to no database and starts one worker per
// database that has the extension; each worker runs rounds of maintenance steps over the database's s5vector
// indexes. Include after the PostgreSQL headers.
#pragma once

namespace s5v::pg {

// From _PG_init, after InitGucs. While shared_preload_libraries is being processed: requests the shared memory,
// registers the launcher and the utility hook that stops a database's worker before DROP DATABASE. Otherwise
// nothing (no worker runs; the functions below say so).
void InitWorker();

// For s5vector_index_stats (palloc'd text): whether a worker runs for the current database, and the last error a
// worker step raised on `index` since the server started (nullptr: none).
char *WorkerStateText();
char *WorkerLastError(Oid index);

} // namespace s5v::pg
