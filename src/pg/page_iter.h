// One pass over the data pages of an s5vector index, for every whole-index loop (verify, and later VACUUM, graph
// load and the scan's sweeps): pages of the requested types only, new (all-zero) pages skipped, every page
// checked before it is handed out, a buffer access strategy, interrupts (and optionally vacuum_delay_point())
// between pages. Plain PostgreSQL code: it may ereport; call it only where that is allowed (not from C++ frames
// holding objects with destructors; inside S5V_PG_CALL from core callbacks).
//
// Usage:
//     S5vPageIter it;
//     PageIterBegin(&it, index, S5V_PAGE_MASK(S5V_PAGE_HOT), BUFFER_LOCK_SHARE, strategy, 0);
//     while (PageIterNext(&it)) {
//         ... it.page, it.blkno, it.buf (locked in the requested mode) ...
//         // to keep the buffer: PageIterKeep(&it) (the caller then unlocks and releases it)
//     }
//     PageIterEnd(&it);    // releases the current page, if any (also safe after an early break)
//
// The pass covers the blocks that existed when it began (pages added during the pass hold only rows inserted
// after it began; a caller that needs them re-runs or re-checks the size), or, with S5V_PAGE_ITER_GROW, goes on
// until the index stops growing (the size is re-read when the pass reaches its end). Block 0, the metapage, is never
// returned. A page whose header or page id is not ours raises ERRCODE_INDEX_CORRUPTED, or, with
// S5V_PAGE_ITER_COUNT_BAD, is skipped and counted in bad_pages (s5vector_verify reports them). A page of a type
// this build does not know is bad the same way; a known type outside the mask is skipped silently.
#pragma once

#include "pg/index.h"

extern "C" {
#include "storage/buf.h"
#include "storage/bufmgr.h"
}

#define S5V_PAGE_MASK(type) (1u << (type))

// Flags of PageIterBegin.
#define S5V_PAGE_ITER_COUNT_BAD 0x01    /* count bad pages instead of raising index_corrupted */
#define S5V_PAGE_ITER_VACUUM_DELAY 0x02 /* call vacuum_delay_point() before each page (VACUUM) */
#define S5V_PAGE_ITER_GROW 0x04         /* at the end, re-read the size and go on over pages added meanwhile */

typedef struct S5vPageIter {
	Relation index;
	uint32 type_mask;
	int lock_mode; /* BUFFER_LOCK_SHARE or BUFFER_LOCK_EXCLUSIVE */
	int flags;
	BufferAccessStrategy strategy;
	BlockNumber nblocks; /* size when the pass began (re-read at its end with S5V_PAGE_ITER_GROW) */
	BlockNumber next;
	/* the current page (valid after PageIterNext returned true) */
	BlockNumber blkno;
	Buffer buf;
	Page page;
	/* counts, for reports */
	int64 pages_returned;
	int64 new_pages;
	int64 bad_pages;
} S5vPageIter;

namespace s5v::pg {

void PageIterBegin(S5vPageIter *it, Relation index, uint32 type_mask, int lock_mode, BufferAccessStrategy strategy,
                   int flags);
// Releases the previous page (unless kept) and moves to the next page of a requested type; false at the end.
bool PageIterNext(S5vPageIter *it);
// The caller takes over the current buffer (locked): the iterator will not release it.
void PageIterKeep(S5vPageIter *it);
// Unlocks and releases the current page now (a caller that must not hold it while it works on, or between calls
// of a scan); the next PageIterNext goes on from the following block.
void PageIterRelease(S5vPageIter *it);
void PageIterEnd(S5vPageIter *it);

} // namespace s5v::pg
