// Offload of sealed cold parts to S5 and the readers of remote parts (docs/s5.md "Offload", TIERS.md "Seal and
// offload"). Plain PostgreSQL code (may ereport): call from plain frames, or inside S5V_PG_CALL.
// Include after the PostgreSQL headers.
#pragma once

#include "pg/cold_pages.h"
#include "pg/cold_store.h"
#include "pg/page_store.h"

extern "C" {
#include "storage/lock.h"
}

#include "core/s5/cid.h"
#include "core/s5/segment.h"

namespace s5v::pg {

// One batch of offload, as s5vector_offload runs it and the background worker may: seal up to max_segments list
// prefixes into parts, upload each as an encrypted segment, swap it in (WAL), wait for the scans, free the local row
// pages. Returns the rows offloaded. Returns 0 without doing anything when s5vector.s5_url is empty, the index's
// offload option is off, the index has no trained cold lists, or another session is offloading this index (that
// one is skipped with a WARNING). Raises on S5 failures (connection failure, data corrupted). Caller holds at least
// RowExclusiveLock on the index.
int64 OffloadIndex(Relation index, int64 max_segments);

// Collection: every GC queue entry older than s5vector.gc_grace (upload intents of crashed or refused uploads,
// unreferenced blobs; nothing a page references is ever queued, since a swap clears its pending entry in the record
// that references the blob) is deleted on S5, then dropped from the queue (WAL). Skips with a WARNING while an
// offload of the index runs (its pending entry is about to be referenced); returns 0 with a negative gc_grace or no
// s5_url. Returns the blobs deleted (a blob the node no longer has counts as collected, not deleted).
int64 CollectGarbage(Relation index);

// ---- helpers shared with compaction (compact.cpp) -----------------------------------------------------------------

// The segment format's metric for an index metric; false for L1 (no segment format).
bool SegmentMetricFor(s5v::Metric m, s5::SegmentMetric *out);

// The offload lock: a tuple lock on (index, block 0, offset 2), like the scan interlock's tag (offset 0). Offload,
// compaction and collection of one index take it in ExclusiveLock without waiting (the second skips with a WARNING),
// from before an upload intent to after its swap.
void OffloadLockTag(Relation index, LOCKTAG *tag);

// A list's entry, read from its centroid page (copied; one page share-locked).
struct EntryRef {
	BlockNumber cblk;
	uint32 slot;
	S5vListInfoData e;
};
void ReadEntry(Relation index, uint32 dim, const ColdTierInfo &tier, uint32 list, EntryRef *out);

// A GC queue page's item, checked (XX002).
S5vGcQueue GetGcQueue(Relation index, Page page, BlockNumber blk);
// A queue page with `room` free slots: the head page if it has them, else a new empty head page (one record with the
// index metapage). Caller holds the cold write lock (queue pages change only under it).
BlockNumber GcQueuePageWithRoom(Relation index, uint32 room);
// Queue a blob (GC state, WAL, flushed). The entry goes to the head queue page when it has `room` free slots (this
// entry included), else to a new head page. Caller holds the cold write lock. Returns the queue page of the entry.
BlockNumber QueueBlob(Relation index, const s5::BlobId &blob, uint32 kind, uint32 room = 1);
// Index of the entry of `blob` with `kind` on a queue page, or -1.
int FindGcEntry(S5vGcQueue q, const s5::BlobId &blob, uint32 kind);
// Turn a pending entry into an unreferenced one (the swap could not be done: the blob is garbage).
void AbandonPending(Relation index, BlockNumber qblk, const s5::BlobId &blob);

// Steps 2-4 of an offload for one segment of `rows` rows (tids, rows * dim vecs) of list `list`: encode, encrypt
// with a fresh key, log the intent (QueueBlob PENDING with `queue_room`, durable), upload and check the node's CID.
// No lock held by the caller. Fills the encrypted CID bytes, the blob and the intent's queue page. Raises on
// failure (the intent then stays queued: an orphan for GC). With qblk NULL no intent is logged in the index: CREATE
// INDEX's direct upload (cold_upload.h), whose index and queue vanish with the build's transaction if it aborts;
// the blob goes to the build journal instead (build_journal.h).
void EncodeAndUploadSegment(Relation index, const IndexInfoCache &info, const S5vMetaPageData &meta, uint32 list,
                            uint32 segment_no, uint32 rows, const ItemPointerData *tids, const float *vecs,
                            uint32 queue_room, uint8 *cid_out, uint16 *cid_len, s5::BlobId *blob, BlockNumber *qblk);

// A new part page's content: its segment (list, number, encrypted CID, blob), its rows and its chain pointer.
struct NewPart {
	uint32 list;
	uint32 segment_no;
	const uint8 *cid; // EncodeEncryptedCidBytes, at most S5V_PART_CID_MAX bytes
	uint16 cid_len;
	s5::BlobId blob;
	const ItemPointerData *tids;
	const int64 *ages;
	const uint8 *flags; // S5V_COLD_ROW_* a row
	uint32 rows;
	BlockNumber next; // the next part of the list's chain (InvalidBlockNumber: none)
};

// Fill `page` (the part page as registered for WAL, or as written by the build) with a new part: the page and its item
// are initialised (InitColdPage), the segment's fields, rows (PartWriteRows: the age encoding) and chain pointer set.
// With `queue` non-NULL (the queue page of the upload's intent, registered in the same record) the blob's pending
// entry is removed: the page that references the blob and the end of its intent are one change. The one writer of
// part pages: offload's swap, compaction's swap and CREATE INDEX's direct upload. Raises ERROR (`what` names the
// writer) when the rows do not fit one page with their ages' encoding (callers check that with PartAgeCodec before
// they upload; a Generic WAL record not yet finished is then not applied).
void WritePartPage(Page page, const NewPart &part, S5vGcQueue queue, const char *what);

// A page that nothing references any more becomes a free page (WAL) in the FSM, if it still is of `page_type` (and
// its item of `tuple_type`, unless negative). Call after WaitForScans.
void FreeColdPage(Relation index, BlockNumber blk, uint16 page_type, int tuple_type);

// ---- for the blob ledger (blob_ledger.cpp): what an index references or queues, read before its pages go ----------

// One blob of an index: a part's encrypted blob (kind 0, queued 0) or a GC queue entry (kind S5V_GC_PENDING or
// S5V_GC_UNREFERENCED, queued when it was queued).
struct RemoteBlob {
	uint8 hash[32];
	uint64 size;
	TimestampTz queued;
	uint32 kind;
};

// Wait for the offload lock of the index (ExclusiveLock on its tag, held to the end of the transaction): no offload
// or collection of the index is between its intent and its swap afterwards.
void LockOffloadWait(Relation index);

// The blobs the parts of list `list` reference (*out palloc'd, one per part). Corruption is XX002.
int ReadListPartBlobs(Relation index, uint32 dim, const ColdTierInfo &tier, uint32 list, RemoteBlob **out);

// The entries of the GC queue page `blk` (out has room for GcEntriesPerPage()), and the next queue page. The caller
// checks each step of the walk (CheckChainStep). Corruption is XX002.
int ReadGcQueuePage(Relation index, BlockNumber blk, RemoteBlob *out, BlockNumber *next);

// Delete (unpin) one blob on S5, as collection does: true when the node deleted it, false when it did not have it;
// raises on any other failure (`what` names the blob in the message).
bool DeleteRemoteBlob(const char *what, const uint8 *hash, uint64 size);

// A part page as readers copy it (palloc'd arrays).
struct PartInfo {
	BlockNumber blkno;
	uint32 list;
	uint32 segment_no;
	uint32 rows;
	int64 remote_bytes;
	uint16 cid_len;
	uint8 cid[S5V_PART_CID_MAX];
	ItemPointerData *tids;
	int64 *ages;
	uint8 *flags;
};

// The part item of a page, checked (page header, type, item size, capacity, count, CID length, flags); corruption is
// XX002.
S5vColdPart GetColdPart(Relation index, Page page, BlockNumber blkno, S5vPartLayout *layout);

// Every part of the chain from `head` (list `list`), newest first, copied out one page share-locked at a time.
// Returns how many (*out palloc'd). A chain that leaves the index, loops or holds a part of another list is XX002.
int ReadPartChain(Relation index, BlockNumber head, uint32 list, PartInfo **out);

// The vectors of `n` parts (rows * dim floats each, palloc'd in the current context): from the cache or in one
// parallel download, each verified, decrypted, decoded and identity-checked. A part that cannot be had raises
// (XX001 for a referenced blob that is missing or wrong, 08006 when the node cannot be reached) unless
// s5vector.on_s5_error = warning: then its vecs[i] is NULL and one WARNING is raised per call site (*warned).
// `thorough` also checks each decrypted segment against its plaintext hash (s5vector_verify).
void FetchPartVectors(Relation index, const IndexInfoCache &info, const PartInfo *parts, int n, float **vecs,
                      bool *warned, bool thorough = false);

// Counters of the remote tier for stats (from the cold metapage) and the GC queue.
struct RemoteTierStats {
	int64 remote_rows;
	int64 segments;
	int64 remote_bytes;
	int64 gc_pending;
};
void ReadRemoteTierStats(Relation index, const S5vMetaPageData &meta, uint32 dim, RemoteTierStats *out);

// VACUUM of the remote parts: dead heap TIDs are marked in the part pages (no network), one Generic WAL record per
// page with the cold metapage's dead_rows. Caller holds the cold write lock.
void VacuumPartChain(Relation index, uint32 dim, BlockNumber meta_blkno, BlockNumber head, uint32 list,
                     IndexBulkDeleteCallback callback, void *callback_state, BufferAccessStrategy strategy,
                     int64 *removed, int64 *live);

// Every list's remote parts (caller holds the cold write lock).
void VacuumRemoteParts(Relation index, uint32 dim, const ColdTierInfo &tier, IndexBulkDeleteCallback callback,
                       void *callback_state, BufferAccessStrategy strategy, int64 *removed, int64 *live);

// s5vector_verify: every referenced blob fetched (no cache) and checked. Returns the parts checked; failures are
// reported through `fail(detail)` (palloc'd text), at most `max_reported` of them, *failures counts all.
int64 VerifyRemoteParts(Relation index, const IndexInfoCache &info, void (*fail)(void *arg, const char *detail),
                        void *arg, int64 max_reported, int64 *failures);

} // namespace s5v::pg
