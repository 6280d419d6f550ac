// The boundary's error plumbing: status -> SQLSTATE, exception capture, saved PostgreSQL errors.
extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}

#include "pg/guard.h"

namespace s5v::pg {

namespace {
// The PostgreSQL error caught by the innermost PgCall, waiting to be re-thrown at the edge. It lives in a context
// of its own under TopMemoryContext (never in a statement's context, which may be gone by the time anyone looks
// at it again), reset when the next error is saved and at every (sub)transaction end, so the slot can never point
// into freed memory nor carry an old error into a later statement.
ErrorData *saved_pg_error = nullptr;
MemoryContext saved_error_cxt = nullptr;

void ForgetSavedError() noexcept {
	saved_pg_error = nullptr;
	if (saved_error_cxt != nullptr)
		MemoryContextReset(saved_error_cxt);
}

void OnXactEvent(XactEvent event, void *arg) {
	ForgetSavedError();
}

void OnSubXactEvent(SubXactEvent event, SubTransactionId mySubid, SubTransactionId parentSubid, void *arg) {
	if (event == SUBXACT_EVENT_ABORT_SUB || event == SUBXACT_EVENT_COMMIT_SUB)
		ForgetSavedError();
}

const char *CopyMessage(const char *msg) noexcept {
	// pstrdup may itself fail (out of memory): fall back to a static text rather than raising here.
	MemoryContext cxt = CurrentMemoryContext;
	const char *copy = nullptr;
	PG_TRY();
	{ copy = MemoryContextStrdup(cxt, msg); }
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		copy = "out of memory";
	}
	PG_END_TRY();
	return copy;
}
} // namespace

int SqlStateFor(StatusCode code) noexcept {
	switch (code) {
	case StatusCode::Ok:
		return 0;
	case StatusCode::InvalidInput:
		return ERRCODE_INVALID_PARAMETER_VALUE;
	case StatusCode::LimitExceeded:
		return ERRCODE_PROGRAM_LIMIT_EXCEEDED;
	case StatusCode::Corrupt:
		// Includes a blob that a durable page references but S5 does not have (s5v::ReferencedObject turns the
		// fetch's NotFound into Corrupt): data lost, not a network problem.
		return ERRCODE_DATA_CORRUPTED;
	case StatusCode::Unavailable:
	case StatusCode::NotFound:
		return ERRCODE_CONNECTION_FAILURE;
	case StatusCode::Cancelled:
		return ERRCODE_QUERY_CANCELED;
	case StatusCode::OutOfMemory:
		return ERRCODE_OUT_OF_MEMORY;
	case StatusCode::External:
	case StatusCode::Internal:
		return ERRCODE_INTERNAL_ERROR;
	}
	return ERRCODE_INTERNAL_ERROR;
}

void CaptureStatus(const Status &status, PendingError &out) noexcept {
	out.pending = true;
	out.sqlstate = SqlStateFor(status.code());
	out.saved = nullptr;
	if (status.code() == StatusCode::External && saved_pg_error != nullptr) {
		out.saved = saved_pg_error;
		saved_pg_error = nullptr;
	}
	out.message = CopyMessage(status.message().c_str());
}

void CaptureException(std::exception_ptr e, PendingError &out) noexcept {
	out.pending = true;
	out.saved = nullptr;
	try {
		std::rethrow_exception(e);
	} catch (const std::bad_alloc &) {
		out.sqlstate = ERRCODE_OUT_OF_MEMORY;
		out.message = "out of memory";
	} catch (const std::exception &ex) {
		out.sqlstate = ERRCODE_INTERNAL_ERROR;
		out.message = CopyMessage(ex.what());
	} catch (...) {
		out.sqlstate = ERRCODE_INTERNAL_ERROR;
		out.message = "unknown C++ exception";
	}
}

void Raise(const PendingError &err) {
	if (err.saved != nullptr)
		ReThrowError(err.saved);
	if (err.sqlstate == ERRCODE_QUERY_CANCELED) {
		// Let PostgreSQL report the cancel the way it always does (statement timeout vs. user request).
		CHECK_FOR_INTERRUPTS();
	}
	if (err.sqlstate == ERRCODE_INTERNAL_ERROR)
		elog(ERROR, "s5vector: %s", err.message);
	ereport(ERROR, (errcode(err.sqlstate), errmsg("%s", err.message)));
	pg_unreachable();
}

void InitGuard() {
	saved_error_cxt = AllocSetContextCreate(TopMemoryContext, "s5vector saved error", ALLOCSET_SMALL_SIZES);
	RegisterXactCallback(OnXactEvent, nullptr);
	RegisterSubXactCallback(OnSubXactEvent, nullptr);
}

Status SaveCurrentPgError() noexcept {
	// Called in the caller's (non-error) memory context right after PG_CATCH.
	ForgetSavedError();
	MemoryContext old = MemoryContextSwitchTo(saved_error_cxt != nullptr ? saved_error_cxt : CurrentMemoryContext);
	saved_pg_error = CopyErrorData();
	MemoryContextSwitchTo(old);
	FlushErrorState();
	return Status::External();
}

// Only a real cancel or termination stops core work: InterruptPending alone is also set by harmless events
// (timeouts that fire no error, barriers, catch-up signals) that CHECK_FOR_INTERRUPTS() handles quietly.
bool InterruptToken::cancelled() const noexcept {
	return InterruptPending && (ProcDiePending || (QueryCancelPending && QueryCancelHoldoffCount == 0)) &&
	       InterruptHoldoffCount == 0 && CritSectionCount == 0;
}

Status PgCall(void (*fn)(void *), void *arg) noexcept {
	MemoryContext oldcxt = CurrentMemoryContext;
	volatile bool failed = false;
	PG_TRY();
	{ fn(arg); }
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		failed = true;
	}
	PG_END_TRY();
	return failed ? SaveCurrentPgError() : Status::Ok();
}

void DiscardSavedPgError() noexcept {
	ForgetSavedError();
}

} // namespace s5v::pg
