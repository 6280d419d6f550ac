// The whole-index page iterator (see page_iter.h).
extern "C" {
#include "postgres.h"

#include "commands/vacuum.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"
}

#include "pg/page_iter.h"
#include "pg/cold_pages.h"

namespace s5v::pg {

namespace {
// Page types this build knows (a page of another type is corrupt).
constexpr uint32 kKnownDataPageTypes = S5V_PAGE_MASK(S5V_PAGE_HOT) | S5V_PAGE_MASK(S5V_PAGE_COLD_META) |
                                       S5V_PAGE_MASK(S5V_PAGE_CENTROIDS) | S5V_PAGE_MASK(S5V_PAGE_COLD_ROWS) |
                                       S5V_PAGE_MASK(S5V_PAGE_COLD_PART);

void ReleaseCurrent(S5vPageIter *it) {
	if (BufferIsValid(it->buf))
		UnlockReleaseBuffer(it->buf);
	it->buf = InvalidBuffer;
	it->page = nullptr;
}

// Header, special space and page id as ours (the checks of CheckPage, without raising).
bool PageLooksOurs(Page page) {
	PageHeader ph = (PageHeader)page;
	return ph->pd_special == BLCKSZ - MAXALIGN(sizeof(S5vPageOpaqueData)) && ph->pd_lower >= SizeOfPageHeaderData &&
	       ph->pd_lower <= ph->pd_upper && ph->pd_upper <= ph->pd_special &&
	       S5vPageGetOpaque(page)->page_id == S5V_PAGE_ID;
}
} // namespace

void PageIterBegin(S5vPageIter *it, Relation index, uint32 type_mask, int lock_mode, BufferAccessStrategy strategy,
                   int flags) {
	memset(it, 0, sizeof(*it));
	it->index = index;
	it->type_mask = type_mask;
	it->lock_mode = lock_mode;
	it->flags = flags;
	it->strategy = strategy;
	it->nblocks = RelationGetNumberOfBlocks(index);
	it->next = S5V_METAPAGE_BLKNO + 1;
	it->blkno = InvalidBlockNumber;
	it->buf = InvalidBuffer;
}

bool PageIterNext(S5vPageIter *it) {
	ReleaseCurrent(it);
	for (;;) {
		if (it->next >= it->nblocks) {
			if (!(it->flags & S5V_PAGE_ITER_GROW))
				break;
			BlockNumber now = RelationGetNumberOfBlocks(it->index);
			if (now <= it->next)
				break;
			it->nblocks = now;
		}
		BlockNumber blk = it->next++;
		CHECK_FOR_INTERRUPTS();
		if (it->flags & S5V_PAGE_ITER_VACUUM_DELAY)
			vacuum_delay_point();
		Buffer buf = ReadBufferExtended(it->index, MAIN_FORKNUM, blk, RBM_NORMAL, it->strategy);
		LockBuffer(buf, it->lock_mode);
		Page page = BufferGetPage(buf);
		if (PageIsNew(page)) {
			it->new_pages++;
			UnlockReleaseBuffer(buf);
			continue;
		}
		uint16 type = PageLooksOurs(page) ? S5vPageGetOpaque(page)->page_type : 0;
		bool known = type < 32 && (kKnownDataPageTypes & S5V_PAGE_MASK(type));
		if (!known) {
			UnlockReleaseBuffer(buf);
			if (!(it->flags & S5V_PAGE_ITER_COUNT_BAD))
				ReportCorruptPage(it->index, blk);
			it->bad_pages++;
			continue;
		}
		if (!(it->type_mask & S5V_PAGE_MASK(type))) {
			UnlockReleaseBuffer(buf);
			continue;
		}
		it->blkno = blk;
		it->buf = buf;
		it->page = page;
		it->pages_returned++;
		return true;
	}
	return false;
}

void PageIterKeep(S5vPageIter *it) {
	it->buf = InvalidBuffer;
	it->page = nullptr;
}

void PageIterRelease(S5vPageIter *it) {
	ReleaseCurrent(it);
}

void PageIterEnd(S5vPageIter *it) {
	ReleaseCurrent(it);
	it->flags &= ~S5V_PAGE_ITER_GROW;
	it->next = it->nblocks;
}

} // namespace s5v::pg
