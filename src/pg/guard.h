// The C++/PostgreSQL boundary (STYLE.md "The boundary rule"), used by every glue file.
//
// Direction C++ -> PostgreSQL: run C++ work through s5v::pg::Guarded(). It catches every exception and turns a
// non-OK Status into plain data; the C++ frames (and their destructors) are gone before ereport() runs.
//
// Direction PostgreSQL -> C++: when core code calls back into PostgreSQL through an interface (a page read),
// the glue wraps the PostgreSQL calls in s5v::pg::PgCall(), which catches the error with PG_TRY, saves it and
// returns Status::External(); the core unwinds normally and Guarded() re-throws the saved error at the edge.
//
// Include after the PostgreSQL headers (postgres.h first in every glue file).
#pragma once

#include "core/cancel.h"
#include "core/status.h"

#include <exception>
#include <new>
#include <type_traits>
#include <utility>

namespace s5v::pg {

// An error waiting to be raised: plain data only (palloc'd strings), safe to longjmp over.
struct PendingError {
	bool pending;
	int sqlstate;            // ERRCODE_* (0 for elog-style internal error)
	const char *message;     // palloc'd in the caller's context
	struct ErrorData *saved; // a PostgreSQL error caught by PgCall, to re-throw as is
};

// Map a core status code to its SQLSTATE (the one table of STYLE.md rule 7).
int SqlStateFor(StatusCode code) noexcept;

// Fill `out` from a status or an in-flight exception. Never throws, never raises.
void CaptureStatus(const Status &status, PendingError &out) noexcept;
void CaptureException(std::exception_ptr e, PendingError &out) noexcept;

// Raise the pending error (ereport/ReThrowError). Call only from a frame whose locals are all plain.
[[noreturn]] void Raise(const PendingError &err);

// Run C++ code that returns a Status; catch everything; raise afterwards from this plain frame.
// fn's own locals are destroyed before anything is raised.
template <typename Fn> inline void Guarded(Fn &&fn) {
	PendingError err{};
	try {
		Status st = std::forward<Fn>(fn)();
		if (!st.ok())
			CaptureStatus(st, err);
	} catch (...) {
		CaptureException(std::current_exception(), err);
	}
	if (err.pending)
		Raise(err);
}

// The core's cancel token over PostgreSQL's InterruptPending; after a Cancelled status the edge raises the
// interrupt with CHECK_FOR_INTERRUPTS() (see Raise()).
class InterruptToken final : public CancelToken {
public:
	bool cancelled() const noexcept override;
};

// From _PG_init: the long-lived context of the saved-error slot and the (sub)transaction callbacks that clear it.
void InitGuard();

// Implementation detail of PgCall: saves the current PostgreSQL error (must be called inside PG_CATCH).
Status SaveCurrentPgError() noexcept;
// Forget a saved error (when a caller decides to swallow an External status).
void DiscardSavedPgError() noexcept;

} // namespace s5v::pg

namespace s5v::pg {

// Run fn(arg) inside PG_TRY; on a PostgreSQL error, save it and return Status::External().
Status PgCall(void (*fn)(void *), void *arg) noexcept;

// Run a callable holding only PostgreSQL calls (no C++ object with a destructor inside it) from C++ code.
template <typename F> inline Status PgTry(F &&f) noexcept {
	using Fn = std::remove_reference_t<F>;
	return PgCall([](void *p) { (*static_cast<Fn *>(p))(); }, (void *)&f);
}

} // namespace s5v::pg

// Run PostgreSQL calls (that may ereport) from inside C++ code: the statement must hold no C++ object with a
// destructor. Sets status_var to Ok, or External with the error saved for Guarded() to re-throw.
// Usage:  S5V_PG_CALL(status_var, buf = ReadBuffer(rel, blkno));
#define S5V_PG_CALL(status_var, ...) ((status_var) = ::s5v::pg::PgTry([&]() { __VA_ARGS__; }))
