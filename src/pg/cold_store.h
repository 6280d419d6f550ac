// The cold tier over index pages (cold_pages.h): the core's ivf::InvertedLists for scans, and the writers (create
// the tier, append a row to a list, install trained centroids) with Generic WAL, at most 4 pages a record.
//
// Writers of the cold tier are serialised by a heavyweight page lock on S5V_COLD_WRITE_LOCK (LockColdWrite), taken
// after the graph write lock when a path takes both. Within a record, buffers are locked in this order: the index
// metapage (only when the tier is created), the cold metapage, the centroid page, the tail row page, a new row page.
// Readers take one buffer at a time in share mode and copy what they need (a list's rows) before reading the next,
// so the core never runs with a buffer locked.
// Include after the PostgreSQL headers.
#pragma once

#include "core/inverted_lists.h"
#include "core/quantizer.h"
#include "pg/cold_pages.h"
#include "pg/page_store.h"

extern "C" {
#include "access/genam.h"
}

// Lock tag (page number, as S5V_GRAPH_WRITE_LOCK) serialising writers of the cold tier.
#define S5V_COLD_WRITE_LOCK 2

namespace s5v::pg {

// What a scan, stats or a writer needs to know of the cold tier (plain data).
struct ColdTierInfo {
	BlockNumber meta_blkno; // InvalidBlockNumber: the index has no cold tier
	uint32 lists;           // trained lists (0: staging only)
	uint32 lists_per_page;
	uint32 centroid_pages;
	BlockNumber centroid_head;
	int64 cold_rows;
	int64 dead_rows;
	int64 train_rows;
	int64 rebalance_pending; // a rebalance step did not finish its moves (rows may be in two lists)
	S5vListInfoData staging; // without centroid
	uint32 cold_codes;       // S5V_CODES_*: list rows carry 8-bit codes (quantizer pages from quant_head)
	BlockNumber quant_head;
	uint32 quant_pages;
};

// Plain PostgreSQL code below (may ereport): call from plain frames, or inside S5V_PG_CALL.

// XX002 "index ... contains a corrupted cold-tier page at block <blk>: <what>", hint REINDEX.
[[noreturn]] void ReportCorruptCold(Relation index, BlockNumber blk, const char *what);
// One step of a walk along a chain of pages (nextblkno): `blk` must be a data page below `nblocks`, and the walk
// may not take more steps than the index has pages (a loop); otherwise ReportCorruptCold(what).
void CheckChainStep(Relation index, BlockNumber blk, BlockNumber nblocks, BlockNumber *walked, const char *what);
// VACUUM's record of one cold page, a list's row page (`part` false) or a sealed part's page (`part` true): the
// slots `dead` of the page in `buf` (pinned, unlocked) are flagged dead and the cold metapage's dead_rows grows by as
// many, in one record. The page is checked again under its exclusive lock; slots past its count or already dead
// are skipped. Returns the rows marked. Caller holds the cold write lock.
int MarkColdRowsDead(Relation index, uint32 dim, BlockNumber meta_blkno, Buffer buf, BlockNumber blk, bool part,
                     const uint16 *dead, int ndead);

void LockColdWrite(Relation index);
void UnlockColdWrite(Relation index);

// The cold tier's state as the cold metapage holds it (meta_blkno Invalid when there is none). `meta` is the
// index's metapage as read by the caller (ReadMetaPage).
void ReadColdTier(Relation index, const S5vMetaPageData &meta, uint32 dim, ColdTierInfo *out);

// Create the cold metapage (staging only, untrained) if the index has none and point the index's metapage at it.
// Caller holds the cold write lock. With `wal` false (inside CREATE INDEX, logged by the build at its end) pages
// are written without WAL. Returns the cold metapage's block.
BlockNumber EnsureColdTier(Relation index, uint32 dim, int64 train_rows, bool wal);

// Where an append goes: list `list` (S5V_STAGING_LIST: the staging list in the cold metapage) of the lists whose
// centroid pages start at centroid_head. With count_in_meta the cold metapage's cold_rows grows too (false while
// training fills lists that the cold metapage does not point at yet).
struct ColdAppendTarget {
	BlockNumber meta_blkno;
	BlockNumber centroid_head;
	uint32 lists;
	uint32 lists_per_page;
	bool count_in_meta;
	bool wal;
	// Look for room that VACUUM freed in the list's older row pages when the tail is full (at most
	// kColdRoomWalkPages of them, from the head of the chain). Off for lists written from scratch (CREATE INDEX,
	// training, rebalancing into new lists): they have no holes, and the walk would read the chain at every page.
	bool reuse_room = true;
	// The index's quantizer when the caller has it (a build, training); NULL: ColdAppendRow looks it up (the cold
	// metapage says whether the tier has codes). New row pages of trained lists are coded when the tier is; a row
	// appended to a coded page gets its code and error there.
	const s5v::ScalarQuantizer *coder = nullptr;
};

// Row pages an append reads at most, from the head of a list's chain, looking for room VACUUM freed.
inline constexpr uint32 kColdRoomWalkPages = 8;

// Append one row to a list: the tail row page if it has room, else the first page with room among the first
// kColdRoomWalkPages of the list's chain (slots VACUUM freed; target.reuse_room), else a new row page linked after the
// tail. One Generic WAL record of at most 4 pages (cold metapage, centroid page, tail page, new page). Caller holds the
// cold write lock.
void ColdAppendRow(Relation index, uint32 dim, const ColdAppendTarget &target, uint32 list, const ItemPointerData *tid,
                   int64 age, uint8 row_flags, const float *vec);

// Rows for ColdAppendRows: row r of the call is element order[r] (or r when order is NULL) of the arrays.
struct ColdRowsIn {
	const ItemPointerData *tids;
	const int64 *ages;
	const uint8 *flags;
	const float *vecs; // dim floats per element
	const int64 *order;
};

// Append n rows to one list, in order, as ColdAppendRow does one: each page they go to is filled in one lock cycle
// and one WAL record (a build's or a training's list-by-list appends write a page per record, not a row).
void ColdAppendRows(Relation index, uint32 dim, const ColdAppendTarget &target, uint32 list, int64 n,
                    const ColdRowsIn &in);

// Write `lists` centroids (lists * dim floats) to a new contiguous run of centroid pages with empty lists; the
// pages are not referenced until InstallLists. Returns the first block. Caller holds the cold write lock.
BlockNumber WriteCentroidPages(Relation index, uint32 dim, const float *centroids, uint32 lists, bool wal);
// Point the cold metapage at trained lists (one record): lists, their centroid pages, the rows they hold (moved
// from staging, or added at build); staging emptied when `clear_staging`. With quant_head valid the tier gets its
// quantizer (WriteQuantizerPages) in the same record: cold_codes S5V_CODES_SQ8.
void InstallLists(Relation index, uint32 dim, BlockNumber meta_blkno, BlockNumber centroid_head, uint32 lists,
                  int64 rows_added, bool clear_staging, bool wal, BlockNumber quant_head = InvalidBlockNumber);

// The quantizer (lo and step, dim floats each) on a new contiguous run of quantizer pages (QuantizerPagesFor(dim)),
// not referenced until InstallLists. Returns the first block. Caller holds the cold write lock.
BlockNumber WriteQuantizerPages(Relation index, uint32 dim, const float *lo, const float *step, bool wal);
// The tier's quantizer parameters into lo and step (dim floats each, caller's), checked (page types, version,
// dimensions, finite values, step >= 0; anything else XX002). False when the tier has no codes.
bool ReadColdQuantizer(Relation index, uint32 dim, const ColdTierInfo &tier, float *lo, float *step);
// Whether CREATE INDEX or training gives the tier codes (cold_codes = auto: dim >= S5V_CODES_AUTO_MIN_DIM).
bool ColdCodesWanted(Relation index, uint32 dim);
// Train the index's quantizer on n rows (n * dim floats, as the index stores them), write its pages and return a
// quantizer for appends (valid until the next call of this or of the append's lookup in this backend) and the first
// page in *head. NULL (and *head InvalidBlockNumber) when the tier gets no codes.
const s5v::ScalarQuantizer *TrainColdQuantizer(Relation index, const IndexInfoCache &info, const float *rows, int64 n,
                                               bool wal, BlockNumber *head);

// Every row of the cold tier (staging and every list, by following the lists, so each row once) that is live and
// matches `filter`, with its distance to `query` (0 when query is NULL), palloc'd in the current context.
struct ColdRow {
	float distance;
	ItemPointerData tid;
};
int64 ColdCollectRows(Relation index, const IndexInfoCache &info, const AgeFilter &filter, const float *query,
                      ColdRow **out);
// Rows of the staging list with their vectors (for training), palloc'd: *vecs has n * dim floats.
int64 ColdReadStaging(Relation index, uint32 dim, const ColdTierInfo &tier, ItemPointerData **tids, int64 **ages,
                      uint8 **flags, float **vecs);

// The nearest list of `vec` among the trained lists (reads the centroid pages one at a time).
uint32 ColdNearestList(Relation index, const IndexInfoCache &info, const ColdTierInfo &tier, const float *vec);

// The cold tier's lists for a scan, as the core's InvertedLists: either the trained lists or the staging list
// alone (a second stream that a scan reads whole). A list's rows are copied out of its pages (one page locked at a
// time) when its chunk count is asked for; chunks are views of that copy (the rows' distances to the query instead of
// their vectors once ScoresQuery was called). Rows that are dead or do not match the
// age filter are handed out with live = 0, and lists whose age range cannot match have no chunks.
class PageColdLists final : public ivf::InvertedLists {
public:
	// Copies of list rows are palloc'd in `cxt` (the scan's), freed with it.
	PageColdLists(Relation index, const IndexInfoCache &info, const AgeFilter &filter, bool staging, MemoryContext cxt);
	~PageColdLists() override;

	// Read the cold metapage and (trained lists) the centroids; false when there is nothing to read (no cold tier,
	// no trained lists, empty staging, or an age filter no row can match).
	Status Open(bool &has_rows);

	std::size_t list_count() const override;
	std::size_t dim() const override { return dim_; }
	Status Centroids(std::span<const float> &out) override;
	// Rows are scored against `query` as they are read from their pages (no copy of the vectors): chunks carry
	// distances. Only before the first list is read.
	bool ScoresQuery(s5v::Metric metric, std::span<const float> query) override;
	// With codes: rows of coded pages whose lower bound cannot enter the nearest `rows` seen so far are handed out as
	// bounds (ListChunk::exact 0), resolved by ExactDistance (their page read again) when the stream reaches them.
	void SetExactRows(std::size_t rows) override;
	Status ExactDistance(ivf::ListId list, RowId id, std::uint64_t loc, float &out, bool &found) override;
	// Fetch the remote parts of the lists a round will read, all at once (cache, then one parallel download).
	Status Prefetch(std::span<const ivf::ListId> lists) override;
	Status ChunkCount(ivf::ListId list, std::size_t &out) override;
	Status GetChunk(ivf::ListId list, std::size_t index, ivf::ListChunk &out) override;
	void ReleaseChunk(ivf::ListChunk &chunk) noexcept override { chunk = ivf::ListChunk{}; }

	// Plain-data state shared with the PostgreSQL helpers of cold_store.cpp.
	struct State;

private:
	Status Fail(Status st);
	State *state_; // palloc'd in the context current at construction
	std::size_t dim_;
	Status failed_;
};

// The first row page of every chain of the tier: staging (list id S5V_STAGING_LIST) and each trained list, palloc'd.
// Returns how many (empty chains included, head InvalidBlockNumber).
int ColdChainHeads(Relation index, uint32 dim, const ColdTierInfo &tier, BlockNumber **heads, uint32 **lists);

// s5vector_verify's cold checks: every chain followed from its head (plain code; corruption raises XX002).
struct ColdVerifyResult {
	bool exists;
	uint32 lists;
	int64 rows;      // rows found in the pages, dead ones included
	int64 dead;      // of which dead
	int64 meta_rows; // the cold metapage's counters
	int64 meta_dead;
	int64 bad_list_counters; // lists (staging included) whose row counter differs from their pages
	int64 bad_age_ranges;    // rows whose age lies outside their list's recorded range
	int64 duplicate_tids;    // live heap TIDs held more than once by the cold tier
	bool rebalance_pending;  // a rebalance step did not finish: duplicates are expected (the next step removes them)
};
void ColdVerify(Relation index, const IndexInfoCache &info, ColdVerifyResult *out);

// Set by s5vector_migrate (cold_migrate.cpp) while it removes migrated rows from the graph through bulkdelete: the
// cold part of bulkdelete must not mark those rows (now cold) dead.
extern bool cold_vacuum_suppressed;

// VACUUM (cold_vacuum.cpp): mark the cold rows whose heap tuples `callback` reports dead (one WAL record per row
// page with the cold metapage's dead_rows; each chain followed from its head so that every row is seen once). Takes
// the cold write lock. *removed / *live: rows marked now, rows live after.
void ColdBulkDelete(Relation index, uint32 dim, IndexBulkDeleteCallback callback, void *callback_state,
                    BufferAccessStrategy strategy, int64 *removed, int64 *live);

} // namespace s5v::pg
