// VACUUM of the cold tier (see cold_store.h): dead heap TIDs are marked dead in their row pages, so no scan hands
// them to the executor again (their slots may be reused by new heap rows). Every chain is followed from its head
// (pages no list points at, left by a crash during training, are not counted). Their space comes back when a part
// is compacted (a later issue); row pages never enter the FSM.
extern "C" {
#include "postgres.h"

#include "access/generic_xlog.h"
#include "commands/vacuum.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"
}

#include "pg/cold_store.h"
#include "pg/offload.h"

namespace s5v::pg {

namespace {

[[noreturn]] void ReportBadChain(Relation index, BlockNumber blk) {
	ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
	                errmsg("index \"%s\" contains a corrupted cold-tier page at block %u: %s",
	                       RelationGetRelationName(index), blk, "list chain leaves the index, loops or mixes lists"),
	                errhint("Please REINDEX it.")));
	pg_unreachable();
}

// Mark the dead rows of one chain. A page is read share-locked to ask the callback; a page with dead rows is then
// changed in one Generic WAL record together with the cold metapage's dead_rows (locked first, as every cold
// record does), so the counter never disagrees with the pages after a crash. Under the cold write lock nothing
// else changes a row page meanwhile.
void VacuumChain(Relation index, uint32 dim, BlockNumber meta_blkno, BlockNumber head, uint32 list,
                 IndexBulkDeleteCallback callback, void *callback_state, BufferAccessStrategy strategy, int64 *removed,
                 int64 *live) {
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	BlockNumber walked = 0;
	for (BlockNumber blk = head; blk != InvalidBlockNumber;) {
		vacuum_delay_point();
		if (blk <= S5V_METAPAGE_BLKNO || blk >= nblocks || ++walked > nblocks)
			ReportBadChain(index, blk);
		Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, blk, RBM_NORMAL, strategy);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		S5vRowsLayout l;
		S5vColdRows rows = GetColdRows(index, BufferGetPage(buf), blk, dim, &l);
		if (rows->list != list) {
			UnlockReleaseBuffer(buf);
			ReportBadChain(index, blk);
		}
		ItemPointer tids = RowsTids(rows, l);
		uint8 *flags = RowsFlags(rows, l);
		uint16 dead[MaxOffsetNumber];
		int ndead = 0;
		uint16 count = rows->count;
		for (uint16 r = 0; r < count; r++) {
			if (flags[r] & S5V_COLD_ROW_DEAD)
				continue;
			if (callback(&tids[r], callback_state))
				dead[ndead++] = r;
			else
				(*live)++;
		}
		BlockNumber next = S5vPageGetOpaque(BufferGetPage(buf))->nextblkno;
		LockBuffer(buf, BUFFER_LOCK_UNLOCK);
		if (ndead > 0) {
			Buffer metabuf = ReadBuffer(index, meta_blkno);
			LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
			(void)GetColdMeta(index, BufferGetPage(metabuf), meta_blkno, dim, RelationGetNumberOfBlocks(index));
			LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
			(void)GetColdRows(index, BufferGetPage(buf), blk, dim, &l);
			GenericXLogState *state = GenericXLogStart(index);
			Page mpage = GenericXLogRegisterBuffer(state, metabuf, 0);
			Page page = GenericXLogRegisterBuffer(state, buf, 0);
			S5vColdMeta cm = (S5vColdMeta)PageGetItem(mpage, PageGetItemId(mpage, FirstOffsetNumber));
			S5vColdRows wrows = (S5vColdRows)PageGetItem(page, PageGetItemId(page, FirstOffsetNumber));
			uint8 *wflags = RowsFlags(wrows, l);
			int marked = 0;
			for (int i = 0; i < ndead; i++)
				if (dead[i] < wrows->count && !(wflags[dead[i]] & S5V_COLD_ROW_DEAD)) {
					wflags[dead[i]] |= S5V_COLD_ROW_DEAD;
					marked++;
				}
			cm->dead_rows = Min(cm->cold_rows, cm->dead_rows + marked);
			GenericXLogFinish(state);
			LockBuffer(buf, BUFFER_LOCK_UNLOCK);
			UnlockReleaseBuffer(metabuf);
			*removed += marked;
		}
		ReleaseBuffer(buf);
		blk = next;
	}
}

} // namespace

void ColdBulkDelete(Relation index, uint32 dim, IndexBulkDeleteCallback callback, void *callback_state,
                    BufferAccessStrategy strategy, int64 *removed, int64 *live) {
	*removed = 0;
	*live = 0;
	S5vMetaPageData meta;
	ReadMetaPage(index, &meta);
	if (meta.cold_metapage == InvalidBlockNumber)
		return;
	LockColdWrite(index);
	ColdTierInfo tier;
	ReadColdTier(index, meta, dim, &tier);
	BlockNumber *heads;
	uint32 *lists;
	int n = ColdChainHeads(index, dim, tier, &heads, &lists);
	for (int i = 0; i < n; i++)
		VacuumChain(index, dim, tier.meta_blkno, heads[i], lists[i], callback, callback_state, strategy, removed, live);
	// Offloaded parts: their dead rows are marked in the part pages (no network).
	VacuumRemoteParts(index, dim, tier, callback, callback_state, strategy, removed, live);
	UnlockColdWrite(index);
}

} // namespace s5v::pg
