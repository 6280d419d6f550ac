// Self-tests of the boundary, callable from SQL so that sql/guard.sql checks them on a real server (they need
// PostgreSQL's error machinery and buffers, so they cannot be core unit tests). Not part of the extension's SQL:
// the test creates the functions itself (superuser), so users never see them.
// - s5vector_guard_selftest(case text): one thing through Guarded/PgCall (guard.h); returns a text or lets the
//   boundary raise.
// - s5vector_page_store_selftest(index regclass): a PageGraphStore refuses all work after its first PostgreSQL
//   error (no buffer is read after it) and returns that first error again.
extern "C" {
#include "postgres.h"

#include "access/relation.h"
#include "executor/instrument.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
}

#include "pg/am.h"
#include "pg/guard.h"
#include "pg/page_store.h"

#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

extern "C" {
PG_FUNCTION_INFO_V1(s5vector_guard_selftest);
PGDLLEXPORT Datum s5vector_guard_selftest(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(s5vector_page_store_selftest);
PGDLLEXPORT Datum s5vector_page_store_selftest(PG_FUNCTION_ARGS);
}

namespace s5v::pg {
namespace {

// Set by a C++ object's destructor: the C++ frames must be gone before the error is raised.
int destructor_runs = 0;

struct CountsDestruction {
	~CountsDestruction() { destructor_runs++; }
};

void RaiseDivisionByZero(void *) {
	ereport(ERROR, (errcode(ERRCODE_DIVISION_BY_ZERO), errmsg("inner error raised by PostgreSQL"),
	                errdetail("kept as is by the boundary")));
}

// A PostgreSQL error raised while a short-lived context is current; the context is deleted before the edge
// re-throws the saved error, which must not point into it.
Status ErrorInDyingContext() {
	MemoryContext dying = AllocSetContextCreate(CurrentMemoryContext, "s5vector selftest", ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(dying);
	Status st = PgCall(RaiseDivisionByZero, nullptr);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(dying);
	// Reuse the freed memory, so that a dangling pointer would read garbage.
	for (int i = 0; i < 64; i++)
		(void)palloc(256);
	return st;
}

} // namespace
} // namespace s5v::pg

using namespace s5v;
using namespace s5v::pg;

Datum s5vector_guard_selftest(PG_FUNCTION_ARGS) {
	char *which = text_to_cstring(PG_GETARG_TEXT_PP(0));
	std::string_view c(which);
	if (c == "status_invalid_input")
		Guarded([]() { return Status::InvalidInput("bad input from the core"); });
	else if (c == "status_limit")
		Guarded([]() { return Status::LimitExceeded("a limit of the core"); });
	else if (c == "status_corrupt")
		Guarded([]() { return Status::Corrupt("corrupt bytes"); });
	else if (c == "status_unavailable")
		Guarded([]() { return Status::Unavailable("node unreachable"); });
	else if (c == "status_not_found")
		Guarded([]() { return Status::NotFound("no such blob"); });
	else if (c == "status_oom")
		Guarded([]() { return Status::OutOfMemory("core out of memory"); });
	else if (c == "status_internal")
		Guarded([]() { return Status::Internal("a core invariant"); });
	else if (c == "status_external_without_saved_error")
		Guarded([]() { return Status::External(); });
	else if (c == "throw_bad_alloc")
		Guarded([]() -> Status { throw std::bad_alloc(); });
	else if (c == "throw_runtime_error")
		Guarded([]() -> Status { throw std::runtime_error("thrown by the core"); });
	else if (c == "throw_int")
		Guarded([]() -> Status { throw 42; });
	else if (c == "pg_error_rethrown")
		Guarded([]() { return PgCall(RaiseDivisionByZero, nullptr); });
	else if (c == "pg_error_dying_context")
		Guarded([]() { return ErrorInDyingContext(); });
	else if (c == "pg_error_swallowed") {
		// A caller that decides to go on after an error: the saved error must not reach a later statement.
		Status st = PgCall(RaiseDivisionByZero, nullptr);
		PG_RETURN_TEXT_P(cstring_to_text(st.code() == StatusCode::External ? "swallowed" : "no error"));
	} else if (c == "pg_error_discarded_then_corrupt")
		Guarded([]() {
			Status st = PgCall(RaiseDivisionByZero, nullptr);
			if (st.code() == StatusCode::External)
				DiscardSavedPgError();
			return Status::Corrupt("the second error wins");
		});
	else if (c == "destructor_before_raise")
		Guarded([]() {
			CountsDestruction guard_object;
			return Status::Corrupt("raised after the destructor ran");
		});
	else if (c == "destructor_runs")
		PG_RETURN_TEXT_P(cstring_to_text(std::to_string(destructor_runs).c_str()));
	else if (c == "cancel") {
		// As a cancel request would: the core sees it through InterruptToken and stops; the edge reports it the
		// way PostgreSQL does.
		QueryCancelPending = true;
		InterruptPending = true;
		Guarded([]() {
			InterruptToken token;
			return token.cancelled() ? Status::Cancelled() : Status::Internal("cancel not seen by the core");
		});
	} else
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("unknown selftest case \"%s\"", which)));
	PG_RETURN_TEXT_P(cstring_to_text("returned"));
}

Datum s5vector_page_store_selftest(PG_FUNCTION_ARGS) {
	Relation index = relation_open(PG_GETARG_OID(0), AccessShareLock);
	const IndexInfoCache &info = GetIndexInfo(index);
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	if (meta.entry_blkno == InvalidBlockNumber)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("the self-test needs a non-empty graph")));
	BlockNumber past_end = RelationGetNumberOfBlocks(index) + 10;
	uint64 entry = NodeIdFromTid(meta.entry_blkno, meta.entry_offno);
	char result[256];
	Guarded([&]() -> Status {
		PageGraphStore store(index, info);
		std::vector<float> vec;
		// A read of a good element works before any error.
		Status before = store.Vector(entry, vec);
		// A TID past the end of the index: CheckIndexBlock raises inside the store (saved, External).
		Status first = store.Vector(NodeIdFromTid(past_end, 1), vec);
		int64 io0 = pgBufferUsage.shared_blks_hit + pgBufferUsage.shared_blks_read;
		// The same good read again, and a search step: refused without touching a buffer.
		Status again = store.Vector(entry, vec);
		std::vector<hnsw::NodeId> out;
		Status neighbors = store.Neighbors(entry, 0, out);
		int64 io1 = pgBufferUsage.shared_blks_hit + pgBufferUsage.shared_blks_read;
		snprintf(result, sizeof(result), "before: %s; first error: %s; after it: %s, %s; buffers read after it: %lld",
		         before.ok() ? "ok" : "failed", first.code() == StatusCode::External ? "External" : "other",
		         again.code() == first.code() ? "same error" : "not refused",
		         neighbors.code() == first.code() ? "same error" : "not refused", (long long)(io1 - io0));
		DiscardSavedPgError();
		return Status::Ok();
	});
	relation_close(index, AccessShareLock);
	PG_RETURN_TEXT_P(cstring_to_text(result));
}
