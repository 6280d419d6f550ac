// VACUUM of the cold tier (see cold_store.h): dead heap TIDs are marked dead in their row pages, so no scan hands
// them to the executor again (their slots may be reused by new heap rows). Their space comes back when a part is
// compacted (a later issue); row pages never enter the FSM.
extern "C" {
#include "postgres.h"

#include "access/generic_xlog.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"
}

#include "pg/cold_store.h"
#include "pg/page_iter.h"

namespace s5v::pg {

void ColdBulkDelete(Relation index, uint32 dim, IndexBulkDeleteCallback callback, void *callback_state,
                    BufferAccessStrategy strategy, int64 *removed, int64 *live) {
	*removed = 0;
	*live = 0;
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	if (meta.cold_metapage == InvalidBlockNumber)
		return;
	LockColdWrite(index);
	S5vPageIter it;
	PageIterBegin(&it, index, S5V_PAGE_MASK(S5V_PAGE_COLD_ROWS), BUFFER_LOCK_EXCLUSIVE, strategy,
	              S5V_PAGE_ITER_VACUUM_DELAY);
	while (PageIterNext(&it)) {
		S5vRowsLayout l;
		S5vColdRows rows = GetColdRows(index, it.page, it.blkno, dim, &l);
		ItemPointer tids = RowsTids(rows, l);
		uint8 *flags = RowsFlags(rows, l);
		uint16 dead[MaxOffsetNumber];
		int ndead = 0;
		for (uint16 r = 0; r < rows->count; r++) {
			if (flags[r] & S5V_COLD_ROW_DEAD)
				continue;
			if (callback(&tids[r], callback_state))
				dead[ndead++] = r;
			else
				(*live)++;
		}
		if (ndead == 0)
			continue;
		GenericXLogState *state = GenericXLogStart(index);
		Page page = GenericXLogRegisterBuffer(state, it.buf, 0);
		S5vColdRows wrows = (S5vColdRows)PageGetItem(page, PageGetItemId(page, FirstOffsetNumber));
		uint8 *wflags = RowsFlags(wrows, l);
		for (int i = 0; i < ndead; i++)
			wflags[dead[i]] |= S5V_COLD_ROW_DEAD;
		GenericXLogFinish(state);
		*removed += ndead;
	}
	PageIterEnd(&it);
	if (*removed > 0) {
		Buffer buf = ReadBuffer(index, meta.cold_metapage);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		(void)GetColdMeta(index, BufferGetPage(buf), meta.cold_metapage, dim, RelationGetNumberOfBlocks(index));
		GenericXLogState *state = GenericXLogStart(index);
		Page page = GenericXLogRegisterBuffer(state, buf, 0);
		S5vColdMeta cm = (S5vColdMeta)PageGetItem(page, PageGetItemId(page, FirstOffsetNumber));
		cm->dead_rows = Min(cm->cold_rows, cm->dead_rows + *removed);
		GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
	}
	UnlockColdWrite(index);
}

} // namespace s5v::pg
