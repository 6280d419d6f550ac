// The cold tier's pages: the cold metapage, centroid pages and list row pages (docs/architecture.md "Cold pages").
//
// Every cold page is a standard page (header, line pointers, special space S5vPageOpaqueData with its page type and
// S5V_PAGE_ID) holding exactly one item at offset 1: a packed tuple whose first two bytes are its type and version,
// as the hot tuples have. One item per page (not one per row) keeps rows dense, keeps the page in the standard layout
// that Generic WAL and log_newpage_range compress (the item spans the page, so an append logs only the bytes it
// changed), and lets the line pointer bound the packed arrays. The hot loops skip cold pages (GetElement returns NULL
// on a page of a cold type).
//
// Layout, one index:
//   metapage (block 0) .cold_metapage -> cold metapage: counters, the staging list, where the centroid pages are
//   centroid pages: a contiguous run of blocks [centroid_head, centroid_head + centroid_pages), each an array of
//                   list entries (centroid + rows, age range, tail chain, sealed parts), list i in page
//                   i / lists_per_page, slot i % lists_per_page
//   row pages:      each list's local tail is a chain (nextblkno) of row pages: TIDs, ages, flags and vectors in
//                   separate packed arrays, appended to at the tail page
//   part pages:     a sealed part keeps its TIDs, ages and flags in a part page (S5vColdPartData, about 10 bytes a
//                   row); its vectors are on S5 (a CID and key in the part header). Offload copies them from row
//                   pages; CREATE INDEX with S5 configured writes them directly (cold_upload.h).
// Include after the PostgreSQL headers.
#pragma once

#include "pg/index.h"

extern "C" {
#include "storage/itemptr.h"
}

// Page types of the cold tier (special space); the hot ones are in index.h.
#define S5V_PAGE_COLD_META 3
#define S5V_PAGE_CENTROIDS 4
#define S5V_PAGE_COLD_ROWS 5
#define S5V_PAGE_COLD_PART 6 /* offload pages: sealed parts, the GC queue, freed pages (tuple type says which) */

// Tuple types of the cold tier (first byte of the page's one item).
#define S5V_TUPLE_COLD_META 3
#define S5V_TUPLE_CENTROIDS 4
#define S5V_TUPLE_COLD_ROWS 5
#define S5V_TUPLE_COLD_PART 6
#define S5V_TUPLE_GC_QUEUE 7  /* page type S5V_PAGE_COLD_PART: entries of the blob collection queue */
#define S5V_TUPLE_FREE 8      /* page type S5V_PAGE_COLD_PART: a page freed by offload, in the FSM, reusable */
#define S5V_TUPLE_QUANTIZER 9 /* page type S5V_PAGE_COLD_META: a slice of the cold tier's 8-bit quantizer */
#define S5V_COLD_VERSION 1
// A row page of version 2 also keeps each row's 8-bit code and its reconstruction error (S5vRowsLayout codes,
// errors); version 1 pages (every index built before codes, and staging) have none and are read as before.
#define S5V_ROWS_VERSION_CODED 2
#define S5V_QUANTIZER_VERSION 1

// cold_codes of the cold metapage: how list rows are coded.
#define S5V_CODES_NONE 0
#define S5V_CODES_SQ8 1 /* 8-bit scalar codes (core/quantizer.h), one quantizer per index */
// cold_codes = auto: codes from this many dimensions on. Below, a code costs more page room than the exact
// distance it saves (docs/benchmarks.md, "IVF", quantized first pass).
#define S5V_CODES_AUTO_MIN_DIM 256

#define S5V_COLD_MAGIC 0x53354344 /* "S5CD" */

// Row flags (one byte a row).
#define S5V_COLD_ROW_DEAD 0x01     /* heap tuple gone (VACUUM); kept until the page is compacted */
#define S5V_COLD_ROW_AGE_NULL 0x02 /* the age column was NULL: never matches an age predicate */
#define S5V_COLD_ROW_FLAGS (S5V_COLD_ROW_DEAD | S5V_COLD_ROW_AGE_NULL)

// The list id of the staging list (rows that arrived before the cold tier had enough rows to train).
#define S5V_STAGING_LIST 0xFFFFFFFFu

// Limits of the lists option (reloption "lists").
#define S5V_MAX_LISTS 32768
// Training needs at least this many cold rows per list (and S5V_MIN_TRAIN_ROWS in all); fewer wait in staging.
#define S5V_MIN_ROWS_PER_LIST 4
#define S5V_MIN_TRAIN_ROWS 64

// One list: its counters and where its rows are. In centroid pages each is followed by its centroid (dimensions
// floats, EntryCentroid); the staging list's (without centroid) is in the cold metapage.
typedef struct S5vListInfoData {
	int64 rows;             /* rows appended to the list, dead ones included */
	int64 min_age;          /* smallest age of a row with an age (PG_INT64_MAX when none) */
	int64 max_age;          /* largest (PG_INT64_MIN when none) */
	BlockNumber tail_head;  /* first row page of the local tail (InvalidBlockNumber: empty) */
	BlockNumber tail_tail;  /* last row page, where appends go */
	BlockNumber parts_head; /* first part page of the sealed parts (InvalidBlockNumber: none; offload issue) */
	uint32 tail_pages;      /* row pages in the tail chain */
} S5vListInfoData;
typedef S5vListInfoData *S5vListInfo;

static_assert(sizeof(S5vListInfoData) == 40, "list entry layout changed: update S5V_COLD_VERSION");

#define S5V_LIST_ENTRY_SIZE(dim) MAXALIGN(sizeof(S5vListInfoData) + sizeof(float) * (dim))

// The cold metapage's item.
typedef struct S5vColdMetaData {
	uint8 type;    /* S5V_TUPLE_COLD_META */
	uint8 version; /* S5V_COLD_VERSION */
	uint16 reserved0;
	uint32 magic; /* S5V_COLD_MAGIC */
	uint32 dimensions;
	uint32 lists;          /* trained lists (0: not trained yet, every cold row is in staging) */
	uint32 lists_per_page; /* list entries per centroid page */
	uint32 centroid_pages;
	BlockNumber centroid_head; /* first centroid page (InvalidBlockNumber while untrained) */
	uint32 rebalance_pending;  /* 1 from a rebalance's new centroids until its moves are done (cold_rebalance.cpp) */
	int64 cold_rows;           /* rows in every list and staging, dead ones included */
	int64 train_rows;          /* staging rows at which the tier is trained (on insert) */
	int64 dead_rows;           /* rows VACUUM marked dead (included in cold_rows) */
	int64 remote_rows;         /* rows of sealed parts whose vectors are on S5 (dead ones included) */
	int64 remote_segments;     /* such parts (one segment, one blob each) */
	int64 remote_bytes;        /* their encrypted blobs' bytes on S5 */
	S5vListInfoData staging;   /* no centroid */
	// The quantizer (S5V_CODES_SQ8): quant_pages contiguous quantizer pages from quant_head, written with the
	// trained lists. An index built before codes has zeros here (the item is zeroed at creation): no codes.
	uint32 cold_codes;      /* S5V_CODES_* */
	BlockNumber quant_head; /* first quantizer page (cold_codes != 0) */
	uint32 quant_pages;
	uint32 reserved1;
} S5vColdMetaData;
typedef S5vColdMetaData *S5vColdMeta;

// A centroid page's item: `count` list entries of S5V_LIST_ENTRY_SIZE(dim) bytes.
typedef struct S5vCentroidsData {
	uint8 type;        /* S5V_TUPLE_CENTROIDS */
	uint8 version;     /* S5V_COLD_VERSION */
	uint16 count;      /* entries on this page */
	uint32 first_list; /* list id of the first entry */
	char entries[FLEXIBLE_ARRAY_MEMBER];
} S5vCentroidsData;
typedef S5vCentroidsData *S5vCentroids;

#define S5V_CENTROIDS_HEADER MAXALIGN(offsetof(S5vCentroidsData, entries))

// A row page's item: a header, then packed arrays at the offsets S5vRowsLayout gives:
//   ItemPointerData tids[capacity] | int64 ages[capacity] | uint8 flags[capacity] | float vectors[capacity * dim]
// and on a coded page (version S5V_ROWS_VERSION_CODED)
//   tids | ages | flags | float errors[capacity] | uint8 codes[capacity * dim] | vectors
// errors[r]: row r's reconstruction error |x - decode(code)| (L2 norm; L1 norm for the L1 metric), so that a
// distance estimated from the code gives a true lower bound of the exact distance even for a row the quantizer
// clamped (outside its trained range).
typedef struct S5vColdRowsData {
	uint8 type;      /* S5V_TUPLE_COLD_ROWS */
	uint8 version;   /* S5V_COLD_VERSION */
	uint16 count;    /* rows used */
	uint16 capacity; /* rows the arrays have room for */
	uint16 reserved;
	uint32 list; /* the list the page belongs to (S5V_STAGING_LIST for staging) */
} S5vColdRowsData;
typedef S5vColdRowsData *S5vColdRows;

// A sealed part (offload, docs/s5.md): one segment on S5. The page keeps the part's TIDs, ages and flags (packed
// arrays after the header, PartLayoutFor) and the encrypted CID (key included) of the blob holding its vectors; the
// parts of a list are a chain (nextblkno) from the list entry's parts_head, newest first. Row i of the page is row i
// of the segment.
//
// Version 2 (S5V_PART_VERSION; version 1 kept 8-byte ages and a flags byte a row, 15 B a row, and is refused with a
// REINDEX hint): an age is a 4-byte offset, age = age_base + offset * age_scale, when every age of the part is such a
// value (age_scale: the greatest common divisor of the ages' differences, so whole-second or whole-day ages of any
// range fit), else the plain 8-byte age (age_width 8). The two flags are two bitmaps. About 10.3 B a row.
#define S5V_PART_CID_MAX 128
#define S5V_PART_VERSION 2
typedef struct S5vColdPartData {
	uint8 type;      /* S5V_TUPLE_COLD_PART */
	uint8 version;   /* S5V_PART_VERSION */
	uint16 count;    /* rows of the part (= the segment's row count) */
	uint16 capacity; /* RowsPerPartFor(age_width) */
	uint16 cid_len;  /* bytes of cid[] used: the encrypted CID (EncodeEncryptedCidBytes) */
	uint32 list;
	uint32 segment_no;  /* the segment's number within its list (identity check) */
	int64 remote_bytes; /* the encrypted blob's size */
	int64 age_base;     /* age_width 4: the smallest age; 8: 0 */
	uint64 age_scale;   /* age_width 4: at least 1; 8: 1 */
	uint8 age_width;    /* 4 or 8 bytes an age */
	uint8 reserved[7];
	uint8 cid[S5V_PART_CID_MAX];
} S5vColdPartData;
typedef S5vColdPartData *S5vColdPart;

// One entry of the blob collection queue (GC state): a blob on S5 that may have no reference. kind PENDING is an
// upload intent logged before the upload (cleared in the swap record that references the blob); UNREFERENCED a blob
// that lost its reference (compaction, a swap that could not be done) and may go after gc_grace.
#define S5V_GC_PENDING 1
#define S5V_GC_UNREFERENCED 2
typedef struct S5vGcEntryData {
	uint8 hash[32]; /* BLAKE3 of the encrypted blob */
	uint64 size;
	TimestampTz queued;
	uint32 kind;
	uint32 reserved;
} S5vGcEntryData;

typedef struct S5vGcQueueData {
	uint8 type;    /* S5V_TUPLE_GC_QUEUE */
	uint8 version; /* S5V_COLD_VERSION */
	uint16 count;
	uint16 capacity;
	uint16 reserved;
	uint32 reserved2;
	S5vGcEntryData entries[FLEXIBLE_ARRAY_MEMBER];
} S5vGcQueueData;
typedef S5vGcQueueData *S5vGcQueue;

// The one item of a cold page fills the page.
#define S5V_COLD_ITEM_SIZE                                                                                             \
	((Size)(BLCKSZ - MAXALIGN(SizeOfPageHeaderData + sizeof(ItemIdData)) - MAXALIGN(sizeof(S5vPageOpaqueData))) &      \
	 ~(Size)(MAXIMUM_ALIGNOF - 1))

namespace s5v::pg {

// Offsets of a row page's arrays inside its item (errors and codes 0 on an uncoded page).
struct S5vRowsLayout {
	uint32 capacity;
	Size tids;
	Size ages;
	Size flags;
	Size vectors;
	Size errors;
	Size codes;
	Size end;
};

inline S5vRowsLayout RowsLayoutFor(uint32 dim, uint32 capacity, bool coded = false) {
	S5vRowsLayout l;
	l.capacity = capacity;
	l.tids = MAXALIGN(sizeof(S5vColdRowsData));
	l.ages = MAXALIGN(l.tids + sizeof(ItemPointerData) * capacity);
	l.flags = l.ages + sizeof(int64) * capacity;
	l.errors = l.codes = 0;
	Size at = l.flags + capacity;
	if (coded) {
		// Before the vectors: what the first pass reads stays in the first bytes of the page (at 784 dimensions
		// all of it within its first 4 kB), so a row pruned by its code never touches the part of the page that
		// holds the vectors (docs/benchmarks.md, "quantized first pass": the first touch of a memory page costs
		// more than the bytes read).
		l.errors = TYPEALIGN(sizeof(float), at);
		l.codes = l.errors + sizeof(float) * capacity;
		at = l.codes + (Size)dim * capacity;
	}
	l.vectors = MAXALIGN(at);
	l.end = l.vectors + sizeof(float) * (Size)dim * capacity;
	return l;
}

// Rows a row page holds for `dim` dimensions (at least 1 for every dim up to S5V_MAX_DIM, coded or not).
inline uint32 RowsPerPage(uint32 dim, bool coded = false) {
	Size row = sizeof(ItemPointerData) + sizeof(int64) + 1 + sizeof(float) * dim + (coded ? sizeof(float) + dim : 0);
	uint32 cap = (uint32)(S5V_COLD_ITEM_SIZE / row);
	while (cap > 0 && RowsLayoutFor(dim, cap, coded).end > S5V_COLD_ITEM_SIZE)
		cap--;
	return cap;
}

// A quantizer page's item: dimensions [first, first + count) of the quantizer, lo[count] then step[count].
typedef struct S5vQuantizerData {
	uint8 type;    /* S5V_TUPLE_QUANTIZER */
	uint8 version; /* S5V_QUANTIZER_VERSION */
	uint16 reserved;
	uint32 dimensions; /* of the whole quantizer (the index's) */
	uint32 first;
	uint32 count;
	float values[FLEXIBLE_ARRAY_MEMBER];
} S5vQuantizerData;
typedef S5vQuantizerData *S5vQuantizer;

// Dimensions one quantizer page holds.
inline uint32 QuantizerDimsPerPage() {
	return (uint32)((S5V_COLD_ITEM_SIZE - offsetof(S5vQuantizerData, values)) / (2 * sizeof(float)));
}
inline uint32 QuantizerPagesFor(uint32 dim) {
	return (dim + QuantizerDimsPerPage() - 1) / QuantizerDimsPerPage();
}

// Offsets of a part page's arrays: ItemPointerData tids[capacity] | ages[capacity] (uint32 offsets or int64) |
// dead bitmap | age-null bitmap (capacity bits each).
struct S5vPartLayout {
	uint32 capacity;
	uint32 width;
	Size tids;
	Size ages;
	Size dead;
	Size nulls;
	Size end;
};

inline S5vPartLayout PartLayoutFor(uint32 capacity, uint32 width) {
	S5vPartLayout l;
	l.capacity = capacity;
	l.width = width;
	l.tids = MAXALIGN(sizeof(S5vColdPartData));
	l.ages = TYPEALIGN(width, l.tids + sizeof(ItemPointerData) * capacity);
	l.dead = l.ages + (Size)width * capacity;
	l.nulls = l.dead + (capacity + 7) / 8;
	l.end = l.nulls + (capacity + 7) / 8;
	return l;
}

// Rows a part page holds with `width`-byte ages (4: 777, 8: 559 with 8 kB pages), whatever the dimensions.
inline uint32 RowsPerPartFor(uint32 width) {
	uint32 cap = (uint32)(S5V_COLD_ITEM_SIZE * 4 / (4 * (sizeof(ItemPointerData) + width) + 1));
	while (cap > 0 && PartLayoutFor(cap, width).end > S5V_COLD_ITEM_SIZE)
		cap--;
	return cap;
}
// The most rows a part page holds (4-byte ages): what offload and compaction aim at.
inline uint32 RowsPerPart() {
	return RowsPerPartFor(4);
}

// The age encoding of a set of ages (added one by one): 4-byte offsets from the smallest with the greatest common
// divisor of their differences as the scale when the range allows, else 8 bytes.
struct PartAgeCodec {
	bool any = false;
	int64 first = 0, lo = 0, hi = 0;
	uint64 g = 0; // gcd of |age - first|

	static uint64 Gcd(uint64 a, uint64 b) {
		while (b != 0) {
			uint64 t = a % b;
			a = b;
			b = t;
		}
		return a;
	}
	void Add(int64 age) {
		if (!any) {
			any = true;
			first = lo = hi = age;
			return;
		}
		uint64 d = age >= first ? (uint64)age - (uint64)first : (uint64)first - (uint64)age;
		g = Gcd(g, d);
		lo = Min(lo, age);
		hi = Max(hi, age);
	}
	uint64 Scale() const { return g == 0 ? 1 : g; }
	uint32 Width() const { return ((uint64)hi - (uint64)lo) / Scale() <= (uint64)PG_UINT32_MAX ? 4 : 8; }
	uint32 Capacity() const { return RowsPerPartFor(Width()); }
};

inline uint32 GcEntriesPerPage() {
	return (uint32)((S5V_COLD_ITEM_SIZE - offsetof(S5vGcQueueData, entries)) / sizeof(S5vGcEntryData));
}

inline ItemPointer PartTids(S5vColdPart p, const S5vPartLayout &l) {
	return (ItemPointer)((char *)p + l.tids);
}
inline int64 PartAge(S5vColdPart p, const S5vPartLayout &l, uint32 r) {
	const char *a = (const char *)p + l.ages;
	if (l.width == 8)
		return ((const int64 *)a)[r];
	return (int64)((uint64)p->age_base + (uint64)((const uint32 *)a)[r] * p->age_scale);
}
// A row's flags (S5V_COLD_ROW_*), from the bitmaps.
inline uint8 PartRowFlags(S5vColdPart p, const S5vPartLayout &l, uint32 r) {
	const uint8 *dead = (const uint8 *)p + l.dead;
	const uint8 *nulls = (const uint8 *)p + l.nulls;
	return (uint8)(((dead[r / 8] >> (r % 8)) & 1) ? S5V_COLD_ROW_DEAD : 0) |
	       (uint8)(((nulls[r / 8] >> (r % 8)) & 1) ? S5V_COLD_ROW_AGE_NULL : 0);
}
inline void PartMarkDead(S5vColdPart p, const S5vPartLayout &l, uint32 r) {
	((uint8 *)p + l.dead)[r / 8] |= (uint8)(1u << (r % 8));
}

// Fill a fresh part item (InitColdPage) with n rows: picks the age encoding and sets capacity, layout and arrays.
// False (nothing written) when n rows do not fit one part page with their ages' encoding.
inline bool PartWriteRows(S5vColdPart p, const ItemPointerData *tids, const int64 *ages, const uint8 *flags, uint32 n) {
	PartAgeCodec codec;
	for (uint32 r = 0; r < n; r++)
		codec.Add(ages[r]);
	uint32 width = codec.Width();
	uint32 cap = RowsPerPartFor(width);
	if (n == 0 || n > cap)
		return false;
	S5vPartLayout l = PartLayoutFor(cap, width);
	p->count = (uint16)n;
	p->capacity = (uint16)cap;
	p->age_width = (uint8)width;
	p->age_base = width == 4 ? codec.lo : 0;
	p->age_scale = width == 4 ? codec.Scale() : 1;
	memcpy(PartTids(p, l), tids, sizeof(ItemPointerData) * n);
	char *a = (char *)p + l.ages;
	uint8 *dead = (uint8 *)p + l.dead;
	uint8 *nulls = (uint8 *)p + l.nulls;
	for (uint32 r = 0; r < n; r++) {
		if (width == 8)
			((int64 *)a)[r] = ages[r];
		else
			((uint32 *)a)[r] = (uint32)(((uint64)ages[r] - (uint64)p->age_base) / p->age_scale);
		if (flags[r] & S5V_COLD_ROW_DEAD)
			dead[r / 8] |= (uint8)(1u << (r % 8));
		if (flags[r] & S5V_COLD_ROW_AGE_NULL)
			nulls[r / 8] |= (uint8)(1u << (r % 8));
	}
	return true;
}

inline uint32 ListsPerCentroidPage(uint32 dim) {
	return (uint32)((S5V_COLD_ITEM_SIZE - S5V_CENTROIDS_HEADER) / S5V_LIST_ENTRY_SIZE(dim));
}

inline ItemPointer RowsTids(S5vColdRows r, const S5vRowsLayout &l) {
	return (ItemPointer)((char *)r + l.tids);
}
inline int64 *RowsAges(S5vColdRows r, const S5vRowsLayout &l) {
	return (int64 *)((char *)r + l.ages);
}
inline uint8 *RowsFlags(S5vColdRows r, const S5vRowsLayout &l) {
	return (uint8 *)((char *)r + l.flags);
}
inline float *RowsVectors(S5vColdRows r, const S5vRowsLayout &l) {
	return (float *)((char *)r + l.vectors);
}
// Coded pages only (l.codes != 0).
inline float *RowsErrors(S5vColdRows r, const S5vRowsLayout &l) {
	return (float *)((char *)r + l.errors);
}
inline uint8 *RowsCodes(S5vColdRows r, const S5vRowsLayout &l) {
	return (uint8 *)((char *)r + l.codes);
}
inline S5vListInfo CentroidEntry(S5vCentroids c, uint32 slot, uint32 dim) {
	return (S5vListInfo)(c->entries + (Size)slot * S5V_LIST_ENTRY_SIZE(dim));
}
inline float *EntryCentroid(S5vListInfo e) {
	return (float *)((char *)e + sizeof(S5vListInfoData));
}

// Is `type` one of the cold page types? (The hot loops skip such pages.)
inline bool IsColdPageType(uint16 type) {
	return type >= S5V_PAGE_COLD_META && type <= S5V_PAGE_COLD_PART;
}

// A page that offload or compaction freed (FreeColdPage: type S5V_PAGE_COLD_PART, one S5V_TUPLE_FREE item) and
// recorded in the FSM. Any allocation may take it as if it were new, a hot insert too: it was freed only after
// WaitForScans, so no scan on the primary still holds a pointer to it (a hot standby's cold scans, which that wait
// does not cover, treat a page of another kind on their way as a sign to re-read their list: WalkChain,
// ReadPartChain).
inline bool IsFreeColdPage(Page page) {
	if (PageIsNew(page) || PageGetSpecialSize(page) != MAXALIGN(sizeof(S5vPageOpaqueData)) ||
	    S5vPageGetOpaque(page)->page_id != S5V_PAGE_ID || S5vPageGetOpaque(page)->page_type != S5V_PAGE_COLD_PART ||
	    PageGetMaxOffsetNumber(page) != FirstOffsetNumber)
		return false;
	return (uint8)((char *)PageGetItem(page, PageGetItemId(page, FirstOffsetNumber)))[0] == S5V_TUPLE_FREE;
}

// Init a fresh cold page of `page_type` with its one item (zeroed, type and version set); returns the item.
char *InitColdPage(Page page, uint16 page_type, uint8 tuple_type);
// The one item of a cold page of `page_type`, checked: page header and id, page type, one normal line pointer
// spanning S5V_COLD_ITEM_SIZE, tuple type and version; anything else raises ERRCODE_INDEX_CORRUPTED.
char *GetColdItem(Relation index, Page page, BlockNumber blkno, uint16 page_type, uint8 tuple_type);
// A row page's item, checked as above and its count/capacity/list against dim (capacity = RowsPerPage(dim),
// count <= capacity, flags known).
S5vColdRows GetColdRows(Relation index, Page page, BlockNumber blkno, uint32 dim, S5vRowsLayout *layout);
// The cold metapage's item, checked (magic, dimensions, counts, block pointers below nblocks).
S5vColdMeta GetColdMeta(Relation index, Page page, BlockNumber blkno, uint32 dim, BlockNumber nblocks);

} // namespace s5v::pg
