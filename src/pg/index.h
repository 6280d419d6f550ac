// The s5vector index: on-page formats and the helpers shared by the access method files (src/pg/am_*.cpp).
// Include after the PostgreSQL headers.
#pragma once

extern "C" {
#include "storage/bufpage.h"
#include "utils/timestamp.h"
}

#include "core/distance.h"

#define S5V_MAGIC 0x53355643 /* "S5VC" */
#define S5V_FORMAT_VERSION 2
#define S5V_PAGE_ID 0xFF5A
#define S5V_METAPAGE_BLKNO 0

// Page types (special space).
#define S5V_PAGE_META 1
#define S5V_PAGE_HOT 2 /* hot tier: element and neighbour tuples */

// Tuple types (first byte of every tuple).
#define S5V_TUPLE_ELEMENT 1
#define S5V_TUPLE_NEIGHBORS 2
#define S5V_TUPLE_VERSION 1

// Element flags.
#define S5V_ELEMENT_DELETED 0x01  /* heap tuple gone; kept in the graph until its neighbours are repaired */
#define S5V_ELEMENT_AGE_NULL 0x02 /* the age column was NULL: never matches an age predicate */

// Limits. The element tuple (header + vector) and the neighbour tuple must each fit on a page.
#define S5V_MAX_DIM 2000
#define S5V_MIN_M 2
#define S5V_MAX_M 100
#define S5V_DEFAULT_M 16
#define S5V_MIN_EF_CONSTRUCTION 4
#define S5V_MAX_EF_CONSTRUCTION 1000
#define S5V_DEFAULT_EF_CONSTRUCTION 64

// Lock tag (on a page number that is never a real lock target of ours otherwise) serialising writers of the graph.
#define S5V_GRAPH_WRITE_LOCK 1

// Special space at the end of every page.
typedef struct S5vPageOpaqueData {
	BlockNumber nextblkno;
	uint16 page_type;
	uint16 page_id; /* S5V_PAGE_ID, last, as pg_filedump expects */
} S5vPageOpaqueData;
typedef S5vPageOpaqueData *S5vPageOpaque;

#define S5vPageGetOpaque(page) ((S5vPageOpaque)PageGetSpecialPointer(page))

// Age column kinds.
#define S5V_AGE_NONE 0 /* no age column: time the row entered the index */
#define S5V_AGE_TIMESTAMPTZ 1
#define S5V_AGE_TIMESTAMP 2
#define S5V_AGE_DATE 3

// State kept for the background worker and garbage collection (planned): zero / InvalidBlockNumber until
// they exist. A fixed-size area, so that adding them needs no new format version.
typedef struct S5vWorkerStateData {
	TimestampTz last_migration;   /* last hot -> cold migration step (0 = never) */
	TimestampTz last_offload;     /* last offload of a cold segment to S5 (0 = never) */
	TimestampTz last_gc;          /* last collection of unreferenced remote blobs (0 = never) */
	BlockNumber gc_queue_head;    /* first page of the queue of blobs to unpin (InvalidBlockNumber = empty) */
	BlockNumber migration_cursor; /* hot page the migration sweep resumes at (InvalidBlockNumber = start) */
	int64 reserved[8];            /* zero */
} S5vWorkerStateData;

// Block 0, format version 2. Every field is checked when the metapage is read (ReadMetaPage, CheckMetaPage).
// The offsets are fixed (static_asserts below; test/tap/009_metapage.pl writes bad values at them).
typedef struct S5vMetaPageData {
	uint32 magic;
	uint32 version;
	uint32 dimensions;
	uint8 metric; /* s5v::Metric */
	uint8 age_kind;
	uint16 m;
	uint16 ef_construction;
	uint16 max_level; /* levels are clamped so that a neighbour tuple fits a page */
	int32 lists;      /* cold tier: number of lists (0 = automatic) */
	Interval hot_window;
	bool hot_window_infinite;
	uint8 reserved0[3];
	/* hot tier */
	BlockNumber entry_blkno; /* InvalidBlockNumber when the graph is empty */
	OffsetNumber entry_offno;
	int16 entry_level;
	BlockNumber insert_page; /* last page appended to; new elements go here first */
	/* cold tier */
	BlockNumber cold_metapage; /* the cold tier's own metapage; InvalidBlockNumber until the cold tier exists */
	uint32 reserved1;
	/* counters */
	int64 hot_elements;
	int64 hot_deleted;
	/* random identity of this index (pg_strong_random), as long as a segment header's index id */
	uint8 index_id[16];
	S5vWorkerStateData worker;
} S5vMetaPageData;
typedef S5vMetaPageData *S5vMetaPage;

static_assert(offsetof(S5vMetaPageData, dimensions) == 8 && offsetof(S5vMetaPageData, metric) == 12 &&
                  offsetof(S5vMetaPageData, age_kind) == 13 && offsetof(S5vMetaPageData, m) == 14 &&
                  offsetof(S5vMetaPageData, ef_construction) == 16 && offsetof(S5vMetaPageData, max_level) == 18 &&
                  offsetof(S5vMetaPageData, lists) == 20 && offsetof(S5vMetaPageData, hot_window) == 24 &&
                  offsetof(S5vMetaPageData, hot_window_infinite) == 40 &&
                  offsetof(S5vMetaPageData, entry_blkno) == 44 && offsetof(S5vMetaPageData, entry_offno) == 48 &&
                  offsetof(S5vMetaPageData, entry_level) == 50 && offsetof(S5vMetaPageData, insert_page) == 52 &&
                  offsetof(S5vMetaPageData, cold_metapage) == 56 && offsetof(S5vMetaPageData, hot_elements) == 64 &&
                  offsetof(S5vMetaPageData, hot_deleted) == 72 && offsetof(S5vMetaPageData, index_id) == 80 &&
                  offsetof(S5vMetaPageData, worker) == 96 && sizeof(S5vMetaPageData) == 192,
              "metapage layout (format version 2) changed: update the format version and test/tap/009_metapage.pl");

#define S5vPageGetMeta(page) ((S5vMetaPage)PageGetContents(page))

// Hot tier element: one heap row.
typedef struct S5vElementTupleData {
	uint8 type;    /* S5V_TUPLE_ELEMENT */
	uint8 version; /* S5V_TUPLE_VERSION */
	uint8 level;
	uint8 flags;
	ItemPointerData heaptid;
	ItemPointerData neighbortid; /* its S5vNeighborTuple */
	int64 age;                   /* microseconds (timestamps; dates are converted), see S5V_AGE_* */
	float x[FLEXIBLE_ARRAY_MEMBER];
} S5vElementTupleData;
typedef S5vElementTupleData *S5vElementTuple;

#define S5V_ELEMENT_SIZE(dim) MAXALIGN(offsetof(S5vElementTupleData, x) + sizeof(float) * (dim))

// Neighbour lists of one element: level 0 has 2*m slots, each level above m slots; unused slots are invalid.
typedef struct S5vNeighborTupleData {
	uint8 type;    /* S5V_TUPLE_NEIGHBORS */
	uint8 version; /* S5V_TUPLE_VERSION */
	uint16 count;  /* number of slots */
	ItemPointerData tids[FLEXIBLE_ARRAY_MEMBER];
} S5vNeighborTupleData;
typedef S5vNeighborTupleData *S5vNeighborTuple;

#define S5V_NEIGHBOR_SLOTS(m, level) (2 * (m) + (m) * (level))
#define S5V_NEIGHBOR_SIZE(m, level)                                                                                    \
	MAXALIGN(offsetof(S5vNeighborTupleData, tids) + sizeof(ItemPointerData) * S5V_NEIGHBOR_SLOTS(m, level))
#define S5V_PAGE_FREE_SPACE                                                                                            \
	(BLCKSZ - MAXALIGN(SizeOfPageHeaderData) - MAXALIGN(sizeof(S5vPageOpaqueData)) - 2 * sizeof(ItemIdData))

// Parsed reloptions.
typedef struct S5vOptions {
	int32 vl_len_;
	int m;
	int ef_construction;
	int lists;
	int hot_window_offset; /* string option */
	bool offload;          /* cold parts may go to S5 (default on) */
	int cold_codes_offset; /* string option: auto | on | off (cold_store.h ColdCodesWanted) */
} S5vOptions;

namespace s5v::pg {

// A node id as the core sees it: the element tuple's TID.
inline uint64 NodeIdFromTid(BlockNumber blk, OffsetNumber off) {
	return ((uint64)blk << 16) | off;
}
inline BlockNumber NodeBlock(uint64 id) {
	return (BlockNumber)(id >> 16);
}
inline OffsetNumber NodeOffset(uint64 id) {
	return (OffsetNumber)(id & 0xFFFF);
}

// The index's frozen settings, read from the metapage once per relcache entry.
struct IndexInfoCache {
	uint32 dimensions;
	s5v::Metric metric;
	uint8 age_kind;
	int m;
	int ef_construction;
	int max_level;
};

// Options and their reloption kind.
int OptionM(Relation index);
bool OptionOffload(Relation index);
int OptionEfConstruction(Relation index);
int OptionLists(Relation index);
// cold_codes: S5V_COLD_CODES_AUTO, _ON or _OFF (read when the cold tier is trained).
#define S5V_COLD_CODES_AUTO 0
#define S5V_COLD_CODES_ON 1
#define S5V_COLD_CODES_OFF 2
int OptionColdCodes(Relation index);
void OptionHotWindow(Relation index, Interval *out, bool *infinite);

// Metric chosen by the opclass of the first column (from its support function 1).
s5v::Metric MetricOfIndex(Relation index);
uint8 AgeKindOfIndex(Relation index);
// The key columns are the vector, then at most one age column (timestamptz, timestamp or date); no INCLUDE
// columns. Anything else raises ERRCODE_FEATURE_NOT_SUPPORTED (CREATE INDEX refuses it; a scan could not honour a
// condition or an ordering on a further column).
void CheckIndexColumns(Relation index);
// Largest level whose neighbour tuple fits a page for this m.
int MaxLevelForM(int m);

// Reads the metapage and checks every field (CheckMetaPage): ERRCODE_INDEX_CORRUPTED, with a detail naming the
// field, when one is wrong; ERRCODE_FEATURE_NOT_SUPPORTED (hint: REINDEX) for an index of an older format.
void ReadMetaPage(Relation index, S5vMetaPageData *out);
// The metapage as stored, checked only for being ours (page header, page type, magic, version); with
// *nblocks the index's size while the metapage was locked (referenced blocks below it exist).
void ReadMetaPageRaw(Relation index, S5vMetaPageData *out, BlockNumber *nblocks);
// Every field of a metapage against its range, its neighbours and the catalog (operator class metric, age column
// type, the vector column's typmod, max_level for m, block pointers below nblocks). Returns the number of bad
// fields; the first `cap` of them are described in problems[] ("metric: 9 is not ...", palloc'd).
int CheckMetaPage(Relation index, const S5vMetaPageData *meta, BlockNumber nblocks, char **problems, int cap);
const IndexInfoCache &GetIndexInfo(Relation index);

// Init a fresh page of the given type.
void InitPage(Page page, uint16 page_type);
// Check a page read from the index (header layout and the page id in its special space); corrupt ->
// ERRCODE_INDEX_CORRUPTED.
void CheckPage(Relation index, Page page, BlockNumber blkno);
[[noreturn]] void ReportCorruptPage(Relation index, BlockNumber blkno);

// The cheap check for pages read on the search path: only the page header, which shares cache lines with the
// line pointers read next (the page id at the far end of the page cost ~5% of a search). CheckPage, used by
// VACUUM, verify and writers, also checks the id.
inline void CheckPageHeader(Relation index, Page page, BlockNumber blkno) {
	PageHeader ph = (PageHeader)page;
	if (unlikely(ph->pd_special != BLCKSZ - MAXALIGN(sizeof(S5vPageOpaqueData)) ||
	             ph->pd_lower < SizeOfPageHeaderData || ph->pd_lower > ph->pd_upper || ph->pd_upper > ph->pd_special))
		ReportCorruptPage(index, blkno);
}

// The element tuple at (blk, off) of a checked page, or NULL when the slot holds no element (unused, or a
// neighbour tuple). Impossible bounds, sizes or tuple types raise ERRCODE_INDEX_CORRUPTED.
S5vElementTuple GetElement(Relation index, Page page, BlockNumber blk, OffsetNumber off, uint32 dim);
// The neighbour tuple at (blk, off), checked the same way; NULL when the slot holds none.
S5vNeighborTuple GetNeighborTuple(Relation index, Page page, BlockNumber blk, OffsetNumber off);

// The neighbour tuple of element `etup`, which lies on block `blk` held (locked) in `buf`: on that page, or on
// another page read and share-locked into *nbuf (release with ReleaseNeighborPage). A page that is not ours
// raises index_corrupted, or gives NULL when `tolerate_bad_page` (s5vector_verify counts those instead).
S5vNeighborTuple NeighborTupleOf(Relation index, Buffer buf, BlockNumber blk, S5vElementTuple etup,
                                 BufferAccessStrategy strategy, Buffer *nbuf, bool tolerate_bad_page);
void ReleaseNeighborPage(Buffer buf, Buffer nbuf);

// Value -> index representation. Returns false when the row is not indexed (zero vector under cosine).
// `out` has dimensions floats; normalised for cosine.
bool PrepareVector(const IndexInfoCache &info, Datum value, float *out);
int64 AgeFromDatum(uint8 age_kind, Datum value);
// A row's age from the index's values (values[1] is the age column when there is one): a NULL age is now and sets
// S5V_ELEMENT_AGE_NULL in *flags; without an age column the age is when the row entered the index (now).
int64 RowAge(const IndexInfoCache &info, const Datum *values, const bool *isnull, uint8 *flags);

} // namespace s5v::pg
