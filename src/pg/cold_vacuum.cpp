// VACUUM of the cold tier (see cold_store.h): dead heap TIDs are marked dead in their row pages, so no scan hands
// them to the executor again (their slots may be reused by new heap rows). Every chain is followed from its head
// (pages no list points at, left by a crash during training, are not counted). Then every row page holding dead
// rows is compacted in place (CompactPage): its live rows slide down, its count drops, and the list's and the cold
// metapage's counters drop with it in the same record, so the dead rows' slots take new rows again (appends go to
// a list's tail page). Row pages never enter the FSM (docs/architecture.md "Free space map, per page type").
extern "C" {
#include "postgres.h"

#include "access/generic_xlog.h"
#include "access/xlog.h"
#include "commands/vacuum.h"
#include "storage/bufmgr.h"
#include "storage/indexfsm.h"
#include "storage/lmgr.h"
#include "utils/rel.h"
}

#include "pg/cold_pages.h"

#include "pg/cold_store.h"
#include "pg/locks.h"
#include "pg/offload.h"

#include <vector>

namespace s5v::pg {

namespace {

// The centroid page holding list `list`'s entry, locked exclusively and checked (*slot: the entry's slot). On a
// mismatch `held` (if valid) is released and the index reported corrupt (`blk`: the row page that led here).
Buffer LockCentroidPageOf(Relation index, const ColdTierInfo &tier, uint32 list, BlockNumber blk, Buffer held,
                          uint32 *slot) {
	if (list >= tier.lists) {
		if (BufferIsValid(held))
			UnlockReleaseBuffer(held);
		ReportCorruptCold(index, blk, "list chain leaves the index, loops or mixes lists");
	}
	BlockNumber cblk = tier.centroid_head + list / tier.lists_per_page;
	*slot = list % tier.lists_per_page;
	Buffer cbuf = ReadBuffer(index, cblk);
	LockBuffer(cbuf, BUFFER_LOCK_EXCLUSIVE);
	S5vCentroids c =
	    (S5vCentroids)GetColdItem(index, BufferGetPage(cbuf), cblk, S5V_PAGE_CENTROIDS, S5V_TUPLE_CENTROIDS);
	if (c->first_list != list - *slot || *slot >= c->count) {
		UnlockReleaseBuffer(cbuf);
		if (BufferIsValid(held))
			UnlockReleaseBuffer(held);
		ReportCorruptCold(index, cblk, "list chain leaves the index, loops or mixes lists");
	}
	return cbuf;
}

// Compact row page `blk` of list `list` (dead rows dropped, live rows slid down in their order), in one Generic WAL
// record with the cold metapage (cold_rows and dead_rows less the dropped rows) and the list's entry (its rows
// counter; the staging entry is in the cold metapage): at most 3 pages, locked in the documented order (cold
// metapage, centroid page, row page). A scan copies a page's rows under its share lock, so it sees the page before
// or after, never half; a row keeps its page, so a scan walking the chain misses none. Returns the rows dropped.
int CompactPage(Relation index, uint32 dim, const ColdTierInfo &tier, uint32 list, BlockNumber blk) {
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	bool staging = list == S5V_STAGING_LIST;
	Buffer metabuf = ReadBuffer(index, tier.meta_blkno);
	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
	(void)GetColdMeta(index, BufferGetPage(metabuf), tier.meta_blkno, dim, nblocks);
	uint32 slot = 0;
	Buffer cbuf = staging ? InvalidBuffer : LockCentroidPageOf(index, tier, list, blk, metabuf, &slot);
	Buffer buf = ReadBuffer(index, blk);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	S5vRowsLayout l;
	S5vColdRows check = GetColdRows(index, BufferGetPage(buf), blk, dim, &l);
	int dropped = 0;
	for (uint16 r = 0; r < check->count; r++)
		dropped += (RowsFlags(check, l)[r] & S5V_COLD_ROW_DEAD) ? 1 : 0;
	if (dropped > 0) {
		GenericXLogState *state = GenericXLogStart(index);
		Page mpage = GenericXLogRegisterBuffer(state, metabuf, 0);
		Page cpage = BufferIsValid(cbuf) ? GenericXLogRegisterBuffer(state, cbuf, 0) : nullptr;
		Page page = GenericXLogRegisterBuffer(state, buf, 0);
		S5vColdMeta cm = (S5vColdMeta)PageGetItem(mpage, PageGetItemId(mpage, FirstOffsetNumber));
		S5vListInfo e =
		    staging
		        ? &cm->staging
		        : CentroidEntry((S5vCentroids)PageGetItem(cpage, PageGetItemId(cpage, FirstOffsetNumber)), slot, dim);
		S5vColdRows rows = (S5vColdRows)PageGetItem(page, PageGetItemId(page, FirstOffsetNumber));
		ItemPointer tids = RowsTids(rows, l);
		int64 *ages = RowsAges(rows, l);
		uint8 *flags = RowsFlags(rows, l);
		float *vecs = RowsVectors(rows, l);
		float *errors = l.codes != 0 ? RowsErrors(rows, l) : nullptr; // coded page: codes move with their rows
		uint8 *codes = l.codes != 0 ? RowsCodes(rows, l) : nullptr;
		uint16 w = 0;
		for (uint16 r = 0; r < rows->count; r++) {
			if (flags[r] & S5V_COLD_ROW_DEAD)
				continue;
			if (w != r) {
				tids[w] = tids[r];
				ages[w] = ages[r];
				flags[w] = flags[r];
				memmove(vecs + (Size)w * dim, vecs + (Size)r * dim, sizeof(float) * dim);
				if (codes != nullptr) {
					errors[w] = errors[r];
					memmove(codes + (Size)w * dim, codes + (Size)r * dim, dim);
				}
			}
			w++;
		}
		// The freed slots zeroed (the page compresses, and nothing stale is left to read).
		uint16 old_count = rows->count;
		memset(tids + w, 0, sizeof(ItemPointerData) * (old_count - w));
		memset(ages + w, 0, sizeof(int64) * (old_count - w));
		memset(flags + w, 0, old_count - w);
		memset(vecs + (Size)w * dim, 0, sizeof(float) * dim * (old_count - w));
		if (codes != nullptr) {
			memset(errors + w, 0, sizeof(float) * (old_count - w));
			memset(codes + (Size)w * dim, 0, (Size)dim * (old_count - w));
		}
		rows->count = w;
		e->rows = Max((int64)0, e->rows - dropped);
		cm->cold_rows = Max((int64)0, cm->cold_rows - dropped);
		cm->dead_rows = Max((int64)0, cm->dead_rows - dropped);
		GenericXLogFinish(state);
	}
	UnlockReleaseBuffer(buf);
	if (BufferIsValid(cbuf))
		UnlockReleaseBuffer(cbuf);
	UnlockReleaseBuffer(metabuf);
	return dropped;
}

} // namespace

int MarkColdRowsDead(Relation index, uint32 dim, BlockNumber meta_blkno, Buffer buf, BlockNumber blk, bool part,
                     const uint16 *dead, int ndead) {
	Buffer metabuf = ReadBuffer(index, meta_blkno);
	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
	(void)GetColdMeta(index, BufferGetPage(metabuf), meta_blkno, dim, RelationGetNumberOfBlocks(index));
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	// Checked again under the exclusive lock; the flags and count are those of the page as registered below.
	S5vRowsLayout rl;
	S5vPartLayout pl;
	if (part)
		(void)GetColdPart(index, BufferGetPage(buf), blk, &pl);
	else
		(void)GetColdRows(index, BufferGetPage(buf), blk, dim, &rl);
	GenericXLogState *state = GenericXLogStart(index);
	Page mpage = GenericXLogRegisterBuffer(state, metabuf, 0);
	Page page = GenericXLogRegisterBuffer(state, buf, 0);
	S5vColdMeta cm = (S5vColdMeta)PageGetItem(mpage, PageGetItemId(mpage, FirstOffsetNumber));
	Item item = PageGetItem(page, PageGetItemId(page, FirstOffsetNumber));
	uint8 *wflags = part ? nullptr : RowsFlags((S5vColdRows)item, rl);
	uint16 count = part ? ((S5vColdPart)item)->count : ((S5vColdRows)item)->count;
	int marked = 0;
	for (int i = 0; i < ndead; i++) {
		if (dead[i] >= count)
			continue;
		if (part) {
			// Part pages keep the flags as bitmaps (cold_pages.h, part version 2).
			if (PartRowFlags((S5vColdPart)item, pl, dead[i]) & S5V_COLD_ROW_DEAD)
				continue;
			PartMarkDead((S5vColdPart)item, pl, dead[i]);
		} else {
			if (wflags[dead[i]] & S5V_COLD_ROW_DEAD)
				continue;
			wflags[dead[i]] |= S5V_COLD_ROW_DEAD;
		}
		marked++;
	}
	cm->dead_rows = Min(cm->cold_rows, cm->dead_rows + marked);
	GenericXLogFinish(state);
	LockBuffer(buf, BUFFER_LOCK_UNLOCK);
	UnlockReleaseBuffer(metabuf);
	return marked;
}

namespace {

// Mark the dead rows of one chain. A page is read share-locked to ask the callback; a page with dead rows is then
// changed by MarkColdRowsDead: one Generic WAL record with the cold metapage's dead_rows (locked first, as every cold
// record does), so the counter never disagrees with the pages after a crash. Under the cold write lock nothing
// else changes a row page meanwhile.
// Unlink row page `blk` of list `list` (its predecessor `prev`, InvalidBlockNumber when it is the chain's head) if it
// is still empty and not the list's last page (where appends go): one Generic WAL record with the list's entry (its
// tail_head when blk is the head, tail_pages) and the predecessor's next pointer, locked in the documented order
// (cold metapage, centroid page, row pages in chain order). The page itself is not changed: a scan that read the
// pointer to it before the unlink goes on through its next pointer. The caller frees it after WaitForScans.
bool UnlinkEmptyPage(Relation index, uint32 dim, const ColdTierInfo &tier, uint32 list, BlockNumber prev,
                     BlockNumber blk) {
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	bool staging = list == S5V_STAGING_LIST;
	Buffer ebuf; // the page holding the list's entry: the cold metapage for staging, else its centroid page
	uint32 slot = 0;
	if (staging) {
		ebuf = ReadBuffer(index, tier.meta_blkno);
		LockBuffer(ebuf, BUFFER_LOCK_EXCLUSIVE);
		(void)GetColdMeta(index, BufferGetPage(ebuf), tier.meta_blkno, dim, nblocks);
	} else {
		ebuf = LockCentroidPageOf(index, tier, list, blk, InvalidBuffer, &slot);
	}
	auto entry_of = [&](Page page) -> S5vListInfo {
		Item item = PageGetItem(page, PageGetItemId(page, FirstOffsetNumber));
		return staging ? &((S5vColdMeta)item)->staging : CentroidEntry((S5vCentroids)item, slot, dim);
	};
	S5vListInfo e = entry_of(BufferGetPage(ebuf));
	Buffer pbuf = InvalidBuffer;
	if (prev != InvalidBlockNumber) {
		pbuf = ReadBuffer(index, prev);
		LockBuffer(pbuf, BUFFER_LOCK_EXCLUSIVE);
	}
	Buffer buf = ReadBuffer(index, blk);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	S5vRowsLayout l;
	S5vColdRows rows = GetColdRows(index, BufferGetPage(buf), blk, dim, &l);
	BlockNumber next = S5vPageGetOpaque(BufferGetPage(buf))->nextblkno;
	bool linked =
	    prev == InvalidBlockNumber ? e->tail_head == blk : S5vPageGetOpaque(BufferGetPage(pbuf))->nextblkno == blk;
	bool ok = rows->count == 0 && rows->list == list && linked && blk != e->tail_tail && next != InvalidBlockNumber &&
	          e->tail_pages > 1;
	if (ok) {
		GenericXLogState *state = GenericXLogStart(index);
		Page epage = GenericXLogRegisterBuffer(state, ebuf, 0);
		S5vListInfo we = entry_of(epage);
		if (prev == InvalidBlockNumber)
			we->tail_head = next;
		else
			S5vPageGetOpaque(GenericXLogRegisterBuffer(state, pbuf, 0))->nextblkno = next;
		we->tail_pages--;
		GenericXLogFinish(state);
	}
	UnlockReleaseBuffer(buf);
	if (BufferIsValid(pbuf))
		UnlockReleaseBuffer(pbuf);
	UnlockReleaseBuffer(ebuf);
	return ok;
}

void VacuumChain(Relation index, uint32 dim, const ColdTierInfo &tier, BlockNumber head, uint32 list,
                 IndexBulkDeleteCallback callback, void *callback_state, BufferAccessStrategy strategy, int64 *removed,
                 int64 *live, int64 *compacted, bool unlink, std::vector<BlockNumber> *unlinked) {
	BlockNumber meta_blkno = tier.meta_blkno;
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	BlockNumber walked = 0;
	BlockNumber prev = InvalidBlockNumber;
	for (BlockNumber blk = head; blk != InvalidBlockNumber;) {
		vacuum_delay_point();
		CheckChainStep(index, blk, nblocks, &walked, "list chain leaves the index, loops or mixes lists");
		Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, blk, RBM_NORMAL, strategy);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		S5vRowsLayout l;
		S5vColdRows rows = GetColdRows(index, BufferGetPage(buf), blk, dim, &l);
		if (rows->list != list) {
			UnlockReleaseBuffer(buf);
			ReportCorruptCold(index, blk, "list chain leaves the index, loops or mixes lists");
		}
		ItemPointer tids = RowsTids(rows, l);
		uint8 *flags = RowsFlags(rows, l);
		uint16 dead[MaxOffsetNumber];
		int ndead = 0;
		int already_dead = 0;
		uint16 count = rows->count;
		for (uint16 r = 0; r < count; r++) {
			if (flags[r] & S5V_COLD_ROW_DEAD) {
				already_dead++;
				continue;
			}
			if (callback(&tids[r], callback_state))
				dead[ndead++] = r;
			else
				(*live)++;
		}
		BlockNumber next = S5vPageGetOpaque(BufferGetPage(buf))->nextblkno;
		LockBuffer(buf, BUFFER_LOCK_UNLOCK);
		if (ndead > 0)
			*removed += MarkColdRowsDead(index, dim, meta_blkno, buf, blk, false, dead, ndead);
		ReleaseBuffer(buf);
		bool empty = count == 0;
		if (ndead > 0 || already_dead > 0) {
			int dropped = CompactPage(index, dim, tier, list, blk);
			*compacted += dropped;
			empty = dropped == count;
		}
		// An empty page that is not the last one leaves the chain (scans stop reading it; freed by the caller).
		if (unlink && empty && next != InvalidBlockNumber && UnlinkEmptyPage(index, dim, tier, list, prev, blk))
			unlinked->push_back(blk);
		else
			prev = blk;
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
	// Empty row pages are unlinked only when no offload, compaction or collection step (the offload lock) and no
	// rebalance step (ShareUpdateExclusiveLock on the index) is under way: those remember row pages by block
	// number across their own waits. Both are tried without waiting; when one is busy, the pages stay linked
	// (empty, harmless) until a later VACUUM.
	LOCKTAG offload_tag;
	OffloadLockTag(index, &offload_tag);
	bool unlink = !RecoveryInProgress() && ConditionalLockRelation(index, ShareUpdateExclusiveLock);
	bool have_rel_lock = unlink;
	if (unlink && LockAcquire(&offload_tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		unlink = false;
	bool have_offload_lock = unlink;
	std::vector<BlockNumber> unlinked;
	LockColdWrite(index);
	ColdTierInfo tier;
	ReadColdTier(index, meta, dim, &tier);
	BlockNumber *heads;
	uint32 *lists;
	int n = ColdChainHeads(index, dim, tier, &heads, &lists);
	int64 compacted = 0;
	for (int i = 0; i < n; i++)
		VacuumChain(index, dim, tier, heads[i], lists[i], callback, callback_state, strategy, removed, live, &compacted,
		            unlink, &unlinked);
	// Offloaded parts: their dead rows are marked in the part pages (no network).
	VacuumRemoteParts(index, dim, tier, callback, callback_state, strategy, removed, live);
	ereport(DEBUG1, (errmsg("s5vector vacuum: %lld cold rows marked dead, %lld dead rows' slots freed, %zu empty row "
	                        "pages unlinked",
	                        (long long)*removed, (long long)compacted, unlinked.size())));
	UnlockColdWrite(index);
	if (have_offload_lock)
		LockRelease(&offload_tag, ExclusiveLock, false);
	if (have_rel_lock)
		UnlockRelation(index, ShareUpdateExclusiveLock);
	// The unlinked pages become free pages (WAL, FSM) once the scans that may still read them have ended. A crash
	// before this leaks them (unreferenced, never read), as offload's freed row pages.
	if (!unlinked.empty()) {
		WaitForScans(index);
		for (BlockNumber blk : unlinked)
			FreeColdPage(index, blk, S5V_PAGE_COLD_ROWS, -1);
		IndexFreeSpaceMapVacuum(index);
	}
}

} // namespace s5v::pg
