// The background worker (docs/worker.md). With shared_preload_libraries = 's5vector' the postmaster starts the
// launcher, which connects to no database (only the shared catalogs: it reads pg_database) and, every naptime,
// starts a dynamic worker for each database that accepts connections and has none. A database worker checks for
// the extension: absent, it exits (so a database without it costs one short connection per naptime); present, it
// stays and runs rounds. A round runs, for each s5vector index of the database, the steps of kSteps in order, each
// in a transaction of its own under s5vector.worker_lock_timeout, moving at most s5vector.max_rows_per_round
// rows; a step that fails is logged in one line (index, step, error) and the round goes on with the next index.
// After the indexes, one database step collects the blob ledger (gc_dropped, blob_ledger.h).
// Shared memory holds one slot per worker (s5vector_worker_status) and the last error per index
// (s5vector_index_stats.last_error).
extern "C" {
#include "postgres.h"

#include <signal.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_am.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/autovacuum.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

#include "pg/blob_ledger.h"
#include "pg/cold_migrate.h"
#include "pg/cold_pages.h"
#include "pg/cold_rebalance.h"
#include "pg/compact.h"
#include "pg/offload.h"
#include "pg/gucs.h"
#include "pg/s5_glue.h"
#include "pg/worker.h"

extern "C" {
PGDLLEXPORT void s5vector_launcher_main(Datum arg);
PGDLLEXPORT void s5vector_worker_main(Datum arg);
PG_FUNCTION_INFO_V1(s5vector_worker_status);
PGDLLEXPORT Datum s5vector_worker_status(PG_FUNCTION_ARGS);
}

namespace s5v::pg {
namespace {

// The steps of a round, in order. A step moves at most max_rows rows of one index (opened by the round with
// `lock`, checked to be an s5vector index, outside recovery) and returns how many it moved; max_rows moved means
// work is left and the next round starts without waiting for the naptime. Add a step with one line here.
struct WorkerStep {
	const char *name;
	LOCKMODE lock;
	int64 (*run)(Relation index, int64 max_rows);
};
const WorkerStep kSteps[] = {
    {"migrate", RowExclusiveLock, [](Relation index, int64 max_rows) { return MigrateIndex(index, max_rows); }},
    // Only when a list needs it (a cheap look at the list directory); never waits for another step.
    {"rebalance", RowExclusiveLock,
     [](Relation index, int64) -> int64 {
	     if (ColdRebalanceNeeded(index))
		     (void)ColdRebalance(index, false);
	     return 0;
     }},
    // Nothing without s5vector.s5_url or with the index's offload option off; a failing node fails only this step.
    {"offload", RowExclusiveLock,
     [](Relation index, int64 max_rows) {
	     return OffloadIndex(index, Max((int64)1, max_rows / (int64)RowsPerPart()));
     }},
    // Only when the cold counters changed since this worker's last pass that found nothing (compact.h).
    {"compact", RowExclusiveLock,
     [](Relation index, int64 max_rows) { return CompactIndex(index, PG_INT64_MAX, max_rows, true); }},
    {"gc", RowExclusiveLock,
     [](Relation index, int64) -> int64 {
	     (void)CollectGarbage(index);
	     return 0;
     }},
};

constexpr int kMaxWorkers = 32;      // database workers at once (max_worker_processes bounds them too)
constexpr int kMaxIndexErrors = 128; // indexes whose last error is kept (the oldest entry is replaced)
constexpr int kMessageLen = 256;     // a kept error message, truncated
constexpr int kNameLen = 2 * NAMEDATALEN + 8;
constexpr int kStepLen = 16;
constexpr int kLauncherRestartSeconds = 5;
constexpr int kPauseSeconds = 30; // a database's worker is not restarted this long after DROP DATABASE stopped it
constexpr int kStopWaitMs = 5000; // how long DROP DATABASE waits for the worker to exit

enum WorkerState : int { kFree = 0, kStarting, kIdle, kRunning };

struct WorkerSlot {
	bool in_use; // claimed by the launcher for dboid
	Oid dboid;
	pid_t pid; // 0 until the worker runs, and again once it exits
	int state;
	char index_name[kNameLen]; // the current step's index and step ("" between steps)
	char step[kStepLen];
	int64 rounds;
	int64 rows_moved;
	TimestampTz last_round_start; // 0 = never
	TimestampTz last_round_end;
	TimestampTz last_error_time;
	char last_error[kMessageLen + kNameLen + kStepLen];
};

struct IndexError {
	Oid dboid;
	Oid index; // InvalidOid: free
	TimestampTz when;
	char step[kStepLen];
	char message[kMessageLen];
};

struct Pause {
	Oid dboid;
	TimestampTz until;
};

struct WorkerShared {
	LWLock *lock;
	pid_t launcher_pid;
	WorkerSlot slots[kMaxWorkers];
	IndexError errors[kMaxIndexErrors];
	Pause pauses[kMaxWorkers];
};

WorkerShared *shared = nullptr;
bool preloaded = false;
shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;
ProcessUtility_hook_type prev_process_utility_hook = nullptr;

const char *StateName(int state) {
	switch (state) {
	case kStarting:
		return "starting";
	case kIdle:
		return "idle";
	case kRunning:
		return "running";
	}
	return "stopped";
}

void WorkerShmemRequest() {
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(WorkerShared)));
	RequestNamedLWLockTranche("s5vector worker", 1);
}

void WorkerShmemStartup() {
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	bool found;
	shared = (WorkerShared *)ShmemInitStruct("s5vector worker", sizeof(WorkerShared), &found);
	if (!found) {
		memset(shared, 0, sizeof(WorkerShared));
		shared->lock = &(GetNamedLWLockTranche("s5vector worker"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

// ---- the launcher -----------------------------------------------------------------------------------------

struct DatabaseEntry {
	Oid oid;
	char name[NAMEDATALEN];
};

// Databases a worker may serve: they accept connections, are not templates (a connection to a template blocks
// CREATE DATABASE) and are valid. Read from the shared catalog, so the launcher needs no database.
List *ListDatabases(MemoryContext cxt) {
	List *out = NIL;
	MemoryContext caller = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void)GetTransactionSnapshot();
	Relation rel = table_open(DatabaseRelationId, AccessShareLock);
	TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
	HeapTuple tup;
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection))) {
		Form_pg_database db = (Form_pg_database)GETSTRUCT(tup);
		if (!db->datallowconn || db->datistemplate)
			continue;
#ifdef DATCONNLIMIT_INVALID_DB
		if (db->datconnlimit == DATCONNLIMIT_INVALID_DB)
			continue;
#endif
		MemoryContext old = MemoryContextSwitchTo(cxt);
		DatabaseEntry *e = (DatabaseEntry *)palloc(sizeof(DatabaseEntry));
		e->oid = db->oid;
		strlcpy(e->name, NameStr(db->datname), NAMEDATALEN);
		out = lappend(out, e);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller);
	return out;
}

// Free the slots of workers that exited.
void ReapWorkers(BackgroundWorkerHandle **handles) {
	for (int i = 0; i < kMaxWorkers; i++) {
		if (handles[i] == nullptr)
			continue;
		pid_t pid;
		if (GetBackgroundWorkerPid(handles[i], &pid) != BGWH_STOPPED)
			continue;
		pfree(handles[i]);
		handles[i] = nullptr;
		LWLockAcquire(shared->lock, LW_EXCLUSIVE);
		memset(&shared->slots[i], 0, sizeof(WorkerSlot));
		LWLockRelease(shared->lock);
	}
}

// Start a worker for every database that has none (and was not paused by DROP DATABASE).
void StartWorkers(BackgroundWorkerHandle **handles, MemoryContext cxt, bool *warned_full) {
	MemoryContextReset(cxt);
	List *dbs = ListDatabases(cxt);
	ListCell *lc;
	foreach (lc, dbs) {
		DatabaseEntry *db = (DatabaseEntry *)lfirst(lc);
		TimestampTz now = GetCurrentTimestamp();
		int free_slot = -1;
		bool have = false;
		LWLockAcquire(shared->lock, LW_EXCLUSIVE);
		for (int i = 0; i < kMaxWorkers; i++) {
			if (shared->slots[i].in_use && shared->slots[i].dboid == db->oid)
				have = true;
			else if (!shared->slots[i].in_use && handles[i] == nullptr && free_slot < 0)
				free_slot = i;
			if (shared->pauses[i].dboid == db->oid && shared->pauses[i].until > now)
				have = true;
		}
		if (!have && free_slot >= 0) {
			WorkerSlot *slot = &shared->slots[free_slot];
			memset(slot, 0, sizeof(WorkerSlot));
			slot->in_use = true;
			slot->dboid = db->oid;
			slot->state = kStarting;
		}
		LWLockRelease(shared->lock);
		if (have)
			continue;
		if (free_slot < 0) {
			if (!*warned_full)
				ereport(LOG, (errmsg("s5vector launcher: no free worker slot for database \"%s\"", db->name),
				              errdetail("At most %d databases have an s5vector worker at once.", kMaxWorkers)));
			*warned_full = true;
			break;
		}
		BackgroundWorker w;
		memset(&w, 0, sizeof(w));
		snprintf(w.bgw_name, BGW_MAXLEN, "s5vector worker for database %s", db->name);
		snprintf(w.bgw_type, BGW_MAXLEN, "s5vector worker");
		w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		w.bgw_start_time = BgWorkerStart_RecoveryFinished;
		w.bgw_restart_time = BGW_NEVER_RESTART; // the launcher restarts it at its next scan
		snprintf(w.bgw_library_name, BGW_MAXLEN, "s5vector");
		snprintf(w.bgw_function_name, BGW_MAXLEN, "s5vector_worker_main");
		w.bgw_main_arg = Int32GetDatum(free_slot);
		memcpy(w.bgw_extra, &db->oid, sizeof(Oid));
		w.bgw_notify_pid = MyProcPid;
		// The handle outlives this scan (cxt is reset at the next one).
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
		bool registered = RegisterDynamicBackgroundWorker(&w, &handles[free_slot]);
		MemoryContextSwitchTo(old);
		if (!registered) {
			handles[free_slot] = nullptr;
			LWLockAcquire(shared->lock, LW_EXCLUSIVE);
			memset(&shared->slots[free_slot], 0, sizeof(WorkerSlot));
			LWLockRelease(shared->lock);
			if (!*warned_full)
				ereport(LOG,
				        (errmsg("s5vector launcher: could not start a worker for database \"%s\"", db->name),
				         errhint("Raise max_worker_processes: the launcher and each database's worker need one.")));
			*warned_full = true;
			break;
		}
	}
}

// ---- a database's worker ----------------------------------------------------------------------------------

struct IndexEntry {
	Oid oid;
	char name[kNameLen]; // schema-qualified, quoted as needed
};

void SetSlotStep(int slot_no, const char *index_name, const char *step) {
	WorkerSlot *slot = &shared->slots[slot_no];
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	strlcpy(slot->index_name, index_name, sizeof(slot->index_name));
	strlcpy(slot->step, step, sizeof(slot->step));
	slot->state = step[0] ? kRunning : kIdle;
	LWLockRelease(shared->lock);
}

// The last error of a step: in the worker's slot and in the per-index table (replacing the oldest entry when full).
void RecordError(int slot_no, const IndexEntry &index, const char *step, const char *message) {
	TimestampTz now = GetCurrentTimestamp();
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	WorkerSlot *slot = &shared->slots[slot_no];
	snprintf(slot->last_error, sizeof(slot->last_error), "%s on %s: %s", step, index.name, message);
	slot->last_error_time = now;
	IndexError *e = nullptr;
	for (int i = 0; i < kMaxIndexErrors && e == nullptr; i++)
		if (shared->errors[i].index == index.oid && shared->errors[i].dboid == MyDatabaseId)
			e = &shared->errors[i];
	for (int i = 0; i < kMaxIndexErrors && e == nullptr; i++)
		if (shared->errors[i].index == InvalidOid)
			e = &shared->errors[i];
	if (e == nullptr) {
		e = &shared->errors[0];
		for (int i = 1; i < kMaxIndexErrors; i++)
			if (shared->errors[i].when < e->when)
				e = &shared->errors[i];
	}
	e->dboid = MyDatabaseId;
	e->index = index.oid;
	e->when = now;
	strlcpy(e->step, step, sizeof(e->step));
	strlcpy(e->message, message, sizeof(e->message));
	LWLockRelease(shared->lock);
}

// The worker's cost-based delay, resolved as autovacuum resolves its own (ApplyWorkerSettings).
double worker_cost_delay = 0;
int worker_cost_limit = 200;

void ApplyWorkerSettings() {
	char value[32];
	snprintf(value, sizeof(value), "%d", s5v_worker_lock_timeout);
	SetConfigOption("lock_timeout", value, PGC_SUSET, PGC_S_OVERRIDE);
	worker_cost_delay = s5v_worker_cost_delay >= 0 ? s5v_worker_cost_delay : autovacuum_vac_cost_delay;
	if (worker_cost_delay < 0)
		worker_cost_delay = VacuumCostDelay;
	worker_cost_limit = s5v_worker_cost_limit > 0 ? s5v_worker_cost_limit : autovacuum_vac_cost_limit;
	if (worker_cost_limit <= 0)
		worker_cost_limit = VacuumCostLimit;
}

// A step's page accesses count against the cost limit, and its loops' vacuum_delay_point() sleep (never while
// holding a lock that others wait on: the steps call it between pages and between rows, outside buffer locks).
void StartCostDelay() {
	VacuumCostDelay = worker_cost_delay;
	VacuumCostLimit = Max(worker_cost_limit, 1);
	VacuumCostBalance = 0;
	VacuumCostActive = worker_cost_delay > 0;
}

void StopCostDelay() {
	VacuumCostActive = false;
	VacuumCostBalance = 0;
}

void ReloadIfPending() {
	if (ConfigReloadPending) {
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
		ApplyWorkerSettings();
	}
}

// The database's s5vector indexes (valid, ready, not temporary: another session's temporary index cannot be
// read). False when the extension is not installed.
bool ListIndexes(MemoryContext cxt, List **out) {
	*out = NIL;
	MemoryContext caller = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "s5vector worker: listing the s5vector indexes");
	bool present = OidIsValid(get_extension_oid("s5vector", true));
	if (present) {
		int rc = SPI_execute("SELECT c.oid, n.nspname::text, c.relname::text FROM pg_catalog.pg_class c "
		                     "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
		                     "JOIN pg_catalog.pg_am a ON a.oid = c.relam "
		                     "JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid "
		                     "WHERE a.amname = 's5vector' AND c.relkind = 'i' AND c.relpersistence <> 't' "
		                     "AND i.indisvalid AND i.indisready ORDER BY c.oid",
		                     true, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "s5vector worker: listing the indexes failed: %s", SPI_result_code_string(rc));
		for (uint64 r = 0; r < SPI_processed; r++) {
			HeapTuple tup = SPI_tuptable->vals[r];
			TupleDesc desc = SPI_tuptable->tupdesc;
			bool isnull;
			Oid oid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
			const char *name = quote_qualified_identifier(SPI_getvalue(tup, desc, 2), SPI_getvalue(tup, desc, 3));
			MemoryContext old = MemoryContextSwitchTo(cxt);
			IndexEntry *e = (IndexEntry *)palloc(sizeof(IndexEntry));
			e->oid = oid;
			strlcpy(e->name, name, sizeof(e->name));
			*out = lappend(*out, e);
			MemoryContextSwitchTo(old);
		}
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller);
	pgstat_report_activity(STATE_IDLE, nullptr);
	return present;
}

enum StepOutcome { kDone, kGone, kFailed };

// One step on one index in a transaction of its own. An error is caught, logged in one line and recorded; the
// transaction is aborted (what the step had made durable stays, and the next round finishes it: TIERS.md).
StepOutcome RunStep(int slot_no, const char *dbname, const IndexEntry &entry, const WorkerStep &step, int64 *moved) {
	MemoryContext caller = CurrentMemoryContext;
	volatile StepOutcome outcome = kDone;
	*moved = 0;
	SetSlotStep(slot_no, entry.name, step.name);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, psprintf("s5vector worker: %s %s", step.name, entry.name));
		Relation index = try_relation_open(entry.oid, step.lock);
		if (index == nullptr)
			outcome = kGone;
		else if (index->rd_rel->relkind != RELKIND_INDEX || index->rd_rel->relam != get_am_oid("s5vector", true)) {
			relation_close(index, step.lock);
			outcome = kGone;
		} else {
			StartCostDelay();
			*moved = step.run(index, s5v_max_rows_per_round);
			StopCostDelay();
			relation_close(index, step.lock);
		}
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		StopCostDelay();
		MemoryContextSwitchTo(caller);
		ErrorData *edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(LOG, (errcode(edata->sqlerrcode),
		              errmsg("s5vector worker: step \"%s\" failed on index %s of database \"%s\": %s", step.name,
		                     entry.name, dbname, edata->message),
		              edata->detail ? errdetail_internal("%s", edata->detail) : 0));
		RecordError(slot_no, entry, step.name, edata->message);
		FreeErrorData(edata);
		outcome = kFailed;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller);
	pgstat_report_activity(STATE_IDLE, nullptr);
	SetSlotStep(slot_no, "", "");
	if (outcome == kGone)
		ereport(LOG,
		        (errmsg("s5vector worker: index %s of database \"%s\" no longer exists; skipped", entry.name, dbname)));
	return outcome;
}

// Blobs of dropped or rebuilt indexes one round collects at most (the database's blob ledger, once per round).
constexpr int64 kDroppedBlobsPerRound = 256;

// The database step after the index steps: collect the blob ledger (CollectDroppedBlobs; nothing without s5_url or
// with a negative gc_grace, one small query on an empty ledger). Its own transaction; a failure is logged in one
// line and kept as the worker's last error. True when it used its whole budget (work is left).
bool RunLedgerStep(int slot_no, const char *dbname) {
	if (!S5Configured() || s5v_gc_grace_s < 0)
		return false; // nothing would be deleted: not even a transaction
	MemoryContext caller = CurrentMemoryContext;
	volatile int64 done = 0;
	SetSlotStep(slot_no, "", "gc_dropped");
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "s5vector worker: gc_dropped");
		done = CollectDroppedBlobs(kDroppedBlobsPerRound);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(caller);
		ErrorData *edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(LOG,
		        (errcode(edata->sqlerrcode),
		         errmsg("s5vector worker: step \"gc_dropped\" failed in database \"%s\": %s", dbname, edata->message)));
		LWLockAcquire(shared->lock, LW_EXCLUSIVE);
		WorkerSlot *slot = &shared->slots[slot_no];
		snprintf(slot->last_error, sizeof(slot->last_error), "gc_dropped: %s", edata->message);
		slot->last_error_time = GetCurrentTimestamp();
		LWLockRelease(shared->lock);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller);
	pgstat_report_activity(STATE_IDLE, nullptr);
	SetSlotStep(slot_no, "", "");
	return done >= kDroppedBlobsPerRound;
}

// One round: every step on every index, then the database's blob ledger. True when a step moved its whole budget
// (work is left).
bool RunRound(int slot_no, const char *dbname, List *indexes) {
	WorkerSlot *slot = &shared->slots[slot_no];
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	slot->last_round_start = GetCurrentTimestamp();
	slot->state = kRunning;
	LWLockRelease(shared->lock);
	bool more = false;
	int64 round_moved = 0;
	ListCell *lc;
	foreach (lc, indexes) {
		const IndexEntry *entry = (const IndexEntry *)lfirst(lc);
		for (const WorkerStep &step : kSteps) {
			CHECK_FOR_INTERRUPTS();
			ReloadIfPending();
			if (!s5v_worker_enabled || RecoveryInProgress())
				goto done;
			int64 moved = 0;
			StepOutcome outcome = RunStep(slot_no, dbname, *entry, step, &moved);
			round_moved += moved;
			if (moved >= s5v_max_rows_per_round)
				more = true;
			if (outcome != kDone)
				break; // the next index
		}
	}
	CHECK_FOR_INTERRUPTS();
	ReloadIfPending();
	if (s5v_worker_enabled && !RecoveryInProgress() && RunLedgerStep(slot_no, dbname))
		more = true;
done:
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	slot->last_round_end = GetCurrentTimestamp();
	slot->rounds++;
	slot->rows_moved += round_moved;
	slot->state = kIdle;
	LWLockRelease(shared->lock);
	pgstat_report_stat(false);
	return more;
}

void ClearSlotPid(int code, Datum arg) {
	int slot_no = DatumGetInt32(arg);
	if (shared == nullptr)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	WorkerSlot *slot = &shared->slots[slot_no];
	if (slot->pid == MyProcPid) {
		slot->pid = 0;
		slot->state = kFree;
		slot->index_name[0] = '\0';
		slot->step[0] = '\0';
	}
	LWLockRelease(shared->lock);
}

void WorkerLoop(int slot_no, Oid dboid) {
	MemoryContext round_cxt = AllocSetContextCreate(TopMemoryContext, "s5vector worker round", ALLOCSET_DEFAULT_SIZES);
	StartTransactionCommand();
	char *name = get_database_name(dboid);
	char *dbname = MemoryContextStrdup(TopMemoryContext, name ? name : "?");
	CommitTransactionCommand();
	MemoryContextSwitchTo(round_cxt);
	ApplyWorkerSettings();
	bool had_extension = false;
	bool more = false;
	TimestampTz last_start = 0;
	for (;;) {
		CHECK_FOR_INTERRUPTS();
		ReloadIfPending();
		if (!s5v_worker_enabled) {
			ereport(LOG, (errmsg("s5vector worker for database \"%s\" stops: s5vector.worker_enabled is off", dbname)));
			proc_exit(0);
		}
		if (RecoveryInProgress()) // cannot happen (started after recovery, and a primary stays one); never work there
			proc_exit(0);
		TimestampTz now = GetCurrentTimestamp();
		TimestampTz next = more ? now : TimestampTzPlusMilliseconds(last_start, (int64)s5v_naptime * 1000);
		if (last_start != 0 && now < next) {
			(void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
			                TimestampDifferenceMilliseconds(now, next), PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			continue;
		}
		last_start = now;
		MemoryContextReset(round_cxt);
		List *indexes;
		if (!ListIndexes(round_cxt, &indexes)) {
			if (had_extension)
				ereport(LOG, (errmsg("s5vector worker for database \"%s\" stops: the extension was dropped", dbname)));
			else
				ereport(DEBUG1, (errmsg("s5vector worker: database \"%s\" has no s5vector extension", dbname)));
			proc_exit(0);
		}
		had_extension = true;
		more = RunRound(slot_no, dbname, indexes);
	}
}

// ---- DROP DATABASE and friends ----------------------------------------------------------------------------

// DROP DATABASE, ALTER DATABASE RENAME and SET TABLESPACE refuse to run while another session (our worker) is
// connected to the database: stop its worker first and keep the launcher from restarting it for a while.
void StopWorkerFor(const char *dbname, const char *why) {
	if (shared == nullptr || dbname == nullptr)
		return;
	Oid dboid = get_database_oid(dbname, true);
	if (!OidIsValid(dboid))
		return;
	pid_t pid = 0;
	TimestampTz now = GetCurrentTimestamp();
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	Pause *pause = nullptr;
	for (int i = 0; i < kMaxWorkers && pause == nullptr; i++)
		if (shared->pauses[i].dboid == dboid)
			pause = &shared->pauses[i];
	for (int i = 0; i < kMaxWorkers && pause == nullptr; i++)
		if (shared->pauses[i].until <= now)
			pause = &shared->pauses[i];
	if (pause != nullptr) {
		pause->dboid = dboid;
		pause->until = TimestampTzPlusMilliseconds(now, kPauseSeconds * 1000);
	}
	for (int i = 0; i < kMaxWorkers; i++)
		if (shared->slots[i].in_use && shared->slots[i].dboid == dboid && shared->slots[i].pid != 0)
			pid = shared->slots[i].pid;
	LWLockRelease(shared->lock);
	if (pid == 0)
		return;
	ereport(LOG, (errmsg("s5vector: stopping the worker of database \"%s\" (pid %d) for %s", dbname, (int)pid, why)));
	kill(pid, SIGTERM);
	for (int waited = 0; waited < kStopWaitMs; waited += 20) {
		bool running = false;
		LWLockAcquire(shared->lock, LW_SHARED);
		for (int i = 0; i < kMaxWorkers; i++)
			if (shared->slots[i].dboid == dboid && shared->slots[i].pid == pid)
				running = true;
		LWLockRelease(shared->lock);
		if (!running)
			break;
		(void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 20, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

void WorkerProcessUtility(PlannedStmt *pstmt, const char *query, bool read_only_tree, ProcessUtilityContext context,
                          ParamListInfo params, QueryEnvironment *query_env, DestReceiver *dest, QueryCompletion *qc) {
	Node *tree = pstmt->utilityStmt;
	if (IsA(tree, DropdbStmt))
		StopWorkerFor(((DropdbStmt *)tree)->dbname, "DROP DATABASE");
	else if (IsA(tree, RenameStmt) && ((RenameStmt *)tree)->renameType == OBJECT_DATABASE)
		StopWorkerFor(((RenameStmt *)tree)->subname, "ALTER DATABASE RENAME");
	else if (IsA(tree, AlterDatabaseStmt)) {
		ListCell *lc;
		foreach (lc, ((AlterDatabaseStmt *)tree)->options)
			if (strcmp(((DefElem *)lfirst(lc))->defname, "tablespace") == 0)
				StopWorkerFor(((AlterDatabaseStmt *)tree)->dbname, "ALTER DATABASE SET TABLESPACE");
	}
	if (prev_process_utility_hook)
		prev_process_utility_hook(pstmt, query, read_only_tree, context, params, query_env, dest, qc);
	else
		standard_ProcessUtility(pstmt, query, read_only_tree, context, params, query_env, dest, qc);
}

} // namespace

void InitWorker() {
	if (!process_shared_preload_libraries_in_progress)
		return;
	preloaded = true;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = WorkerShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = WorkerShmemStartup;
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = WorkerProcessUtility;

	BackgroundWorker w;
	memset(&w, 0, sizeof(w));
	snprintf(w.bgw_name, BGW_MAXLEN, "s5vector launcher");
	snprintf(w.bgw_type, BGW_MAXLEN, "s5vector launcher");
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished; // never on a standby
	w.bgw_restart_time = kLauncherRestartSeconds;
	snprintf(w.bgw_library_name, BGW_MAXLEN, "s5vector");
	snprintf(w.bgw_function_name, BGW_MAXLEN, "s5vector_launcher_main");
	RegisterBackgroundWorker(&w);
}

char *WorkerStateText() {
	if (!preloaded || shared == nullptr)
		return pstrdup("not running: s5vector is not in shared_preload_libraries");
	if (RecoveryInProgress())
		return pstrdup("not running: the server is a standby (the worker runs on the primary)");
	if (!s5v_worker_enabled)
		return pstrdup("not running: s5vector.worker_enabled is off");
	pid_t pid = 0;
	LWLockAcquire(shared->lock, LW_SHARED);
	for (int i = 0; i < kMaxWorkers; i++)
		if (shared->slots[i].in_use && shared->slots[i].dboid == MyDatabaseId && shared->slots[i].pid != 0)
			pid = shared->slots[i].pid;
	LWLockRelease(shared->lock);
	if (pid != 0)
		return psprintf("running (pid %d)", (int)pid);
	return pstrdup("not running now (the launcher starts one within s5vector.naptime)");
}

char *WorkerLastError(Oid index) {
	if (shared == nullptr)
		return nullptr;
	IndexError e;
	bool found = false;
	LWLockAcquire(shared->lock, LW_SHARED);
	for (int i = 0; i < kMaxIndexErrors && !found; i++)
		if (shared->errors[i].index == index && shared->errors[i].dboid == MyDatabaseId) {
			e = shared->errors[i];
			found = true;
		}
	LWLockRelease(shared->lock);
	if (!found)
		return nullptr;
	return psprintf("%s at %s: %s", e.step, timestamptz_to_str(e.when), e.message);
}

} // namespace s5v::pg

using namespace s5v::pg;

void s5vector_launcher_main(Datum arg) {
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(nullptr, nullptr, 0); // no database: the shared catalogs only
	pgstat_report_appname("s5vector launcher");
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->launcher_pid = MyProcPid;
	LWLockRelease(shared->lock);
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "s5vector launcher", ALLOCSET_DEFAULT_SIZES);
	BackgroundWorkerHandle *handles[kMaxWorkers] = {};
	TimestampTz next_scan = 0;
	bool warned_full = false;
	for (;;) {
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending) {
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			next_scan = 0; // worker_enabled may have been turned on
		}
		ReapWorkers(handles);
		TimestampTz now = GetCurrentTimestamp();
		if (now >= next_scan) {
			if (s5v_worker_enabled && !RecoveryInProgress())
				StartWorkers(handles, cxt, &warned_full);
			now = GetCurrentTimestamp();
			next_scan = TimestampTzPlusMilliseconds(now, (int64)s5v_naptime * 1000);
		}
		(void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
		                TimestampDifferenceMilliseconds(now, next_scan), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

void s5vector_worker_main(Datum arg) {
	int slot_no = DatumGetInt32(arg);
	Oid dboid;
	memcpy(&dboid, MyBgworkerEntry->bgw_extra, sizeof(Oid));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	if (slot_no < 0 || slot_no >= kMaxWorkers || shared == nullptr)
		proc_exit(0);
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->slots[slot_no].pid = MyProcPid;
	shared->slots[slot_no].state = kStarting;
	LWLockRelease(shared->lock);
	// Registered before the connection, so it runs after InitPostgres' own exit callbacks (which release locks).
	before_shmem_exit(ClearSlotPid, Int32GetDatum(slot_no));
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("s5vector worker");
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->slots[slot_no].state = kIdle;
	LWLockRelease(shared->lock);
	WorkerLoop(slot_no, dboid);
}

// One row per database worker: what it is doing and its rounds. No rows without the preload (and a NOTICE).
Datum s5vector_worker_status(PG_FUNCTION_ARGS) {
	InitMaterializedSRF(fcinfo, 0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
	if (shared == nullptr) {
		ereport(NOTICE, (errmsg("no s5vector worker runs: s5vector is not in shared_preload_libraries")));
		return (Datum)0;
	}
	WorkerSlot *copy = (WorkerSlot *)palloc(sizeof(WorkerSlot) * kMaxWorkers);
	LWLockAcquire(shared->lock, LW_SHARED);
	memcpy(copy, shared->slots, sizeof(WorkerSlot) * kMaxWorkers);
	LWLockRelease(shared->lock);
	for (int i = 0; i < kMaxWorkers; i++) {
		const WorkerSlot &s = copy[i];
		if (!s.in_use || s.state == kFree) // kFree: exited, not yet reaped by the launcher
			continue;
		Datum values[11];
		bool nulls[11] = {false};
		char *dbname = get_database_name(s.dboid);
		values[0] = dbname ? CStringGetTextDatum(dbname) : (Datum)0;
		nulls[0] = dbname == nullptr;
		values[1] = Int32GetDatum((int32)s.pid);
		nulls[1] = s.pid == 0;
		values[2] = CStringGetTextDatum(s.pid == 0 ? "starting" : StateName(s.state));
		values[3] = CStringGetTextDatum(s.index_name);
		nulls[3] = s.index_name[0] == '\0';
		values[4] = CStringGetTextDatum(s.step);
		nulls[4] = s.step[0] == '\0';
		values[5] = Int64GetDatum(s.rounds);
		values[6] = Int64GetDatum(s.rows_moved);
		values[7] = TimestampTzGetDatum(s.last_round_start);
		nulls[7] = s.last_round_start == 0;
		values[8] = TimestampTzGetDatum(s.last_round_end);
		nulls[8] = s.last_round_end == 0;
		values[9] = CStringGetTextDatum(s.last_error);
		nulls[9] = s.last_error[0] == '\0';
		values[10] = TimestampTzGetDatum(s.last_error_time);
		nulls[10] = s.last_error_time == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum)0;
}
