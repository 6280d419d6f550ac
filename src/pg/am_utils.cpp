// Shared helpers of the access method: options, metric from the opclass, metapage, page checks, value conversion.
extern "C" {
#include "postgres.h"

#include <math.h>

#include "access/reloptions.h"
#include "catalog/pg_type.h"
#include "storage/bufmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

#include "pg/index.h"
#include "pg/cold_pages.h"
#include "pg/s5vector.h"
#include "pg/vector.h"

namespace s5v::pg {

static relopt_kind s5v_relopt_kind;

// hot_window must parse as an interval (or 'infinity'); checked at CREATE INDEX and ALTER INDEX.
static void ValidateHotWindow(const char *value) {
	if (value == nullptr)
		return;
	if (pg_strcasecmp(value, "infinity") == 0)
		return;
	Interval *iv = DatumGetIntervalP(
	    DirectFunctionCall3(interval_in, CStringGetDatum(value), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	if (iv->month < 0 || iv->day < 0 || iv->time < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("invalid value for parameter \"hot_window\": \"%s\"", value),
		                errdetail("The hot window cannot be negative.")));
}

// cold_codes must be auto, on or off.
static void ValidateColdCodes(const char *value) {
	if (value == nullptr)
		return;
	if (pg_strcasecmp(value, "auto") != 0 && pg_strcasecmp(value, "on") != 0 && pg_strcasecmp(value, "off") != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("invalid value for parameter \"cold_codes\": \"%s\"", value),
		                errdetail("Valid values are \"auto\", \"on\" and \"off\".")));
}

void InitIndexOptions() {
	s5v_relopt_kind = add_reloption_kind();
	add_int_reloption(s5v_relopt_kind, "m", "Max number of connections", S5V_DEFAULT_M, S5V_MIN_M, S5V_MAX_M,
	                  AccessExclusiveLock);
	add_int_reloption(s5v_relopt_kind, "ef_construction", "Size of the dynamic candidate list for construction",
	                  S5V_DEFAULT_EF_CONSTRUCTION, S5V_MIN_EF_CONSTRUCTION, S5V_MAX_EF_CONSTRUCTION,
	                  AccessExclusiveLock);
	add_int_reloption(s5v_relopt_kind, "lists", "Number of cold-tier lists (0 = automatic)", 0, 0, 32768,
	                  AccessExclusiveLock);
	add_string_reloption(s5v_relopt_kind, "hot_window", "Age after which rows move from the hot to the cold tier",
	                     "7 days", ValidateHotWindow, AccessExclusiveLock);
	add_bool_reloption(s5v_relopt_kind, "offload", "Whether sealed cold parts may be offloaded to S5", true,
	                   ShareUpdateExclusiveLock);
	add_string_reloption(s5v_relopt_kind, "cold_codes",
	                     "Whether cold list rows carry 8-bit codes for a quantized first pass (auto, on, off)", "auto",
	                     ValidateColdCodes, AccessExclusiveLock);
}

extern "C" bytea *s5vector_options_internal(Datum reloptions, bool validate);

} // namespace s5v::pg

extern "C" bytea *s5vector_options_internal(Datum reloptions, bool validate) {
	static const relopt_parse_elt tab[] = {
	    {"m", RELOPT_TYPE_INT, offsetof(S5vOptions, m)},
	    {"ef_construction", RELOPT_TYPE_INT, offsetof(S5vOptions, ef_construction)},
	    {"lists", RELOPT_TYPE_INT, offsetof(S5vOptions, lists)},
	    {"hot_window", RELOPT_TYPE_STRING, offsetof(S5vOptions, hot_window_offset)},
	    {"offload", RELOPT_TYPE_BOOL, offsetof(S5vOptions, offload)},
	    {"cold_codes", RELOPT_TYPE_STRING, offsetof(S5vOptions, cold_codes_offset)},
	};
	return (bytea *)build_reloptions(reloptions, validate, s5v::pg::s5v_relopt_kind, sizeof(S5vOptions), tab,
	                                 lengthof(tab));
}

namespace s5v::pg {

bool OptionOffload(Relation index) {
	S5vOptions *opts = (S5vOptions *)index->rd_options;
	return opts ? opts->offload : true;
}

int OptionM(Relation index) {
	S5vOptions *opts = (S5vOptions *)index->rd_options;
	return opts ? opts->m : S5V_DEFAULT_M;
}

int OptionEfConstruction(Relation index) {
	S5vOptions *opts = (S5vOptions *)index->rd_options;
	return opts ? opts->ef_construction : S5V_DEFAULT_EF_CONSTRUCTION;
}

int OptionColdCodes(Relation index) {
	S5vOptions *opts = (S5vOptions *)index->rd_options;
	if (opts == nullptr || opts->cold_codes_offset == 0)
		return S5V_COLD_CODES_AUTO;
	const char *value = (const char *)opts + opts->cold_codes_offset;
	if (pg_strcasecmp(value, "on") == 0)
		return S5V_COLD_CODES_ON;
	if (pg_strcasecmp(value, "off") == 0)
		return S5V_COLD_CODES_OFF;
	return S5V_COLD_CODES_AUTO;
}

int OptionLists(Relation index) {
	S5vOptions *opts = (S5vOptions *)index->rd_options;
	return opts ? opts->lists : 0;
}

void OptionHotWindow(Relation index, Interval *out, bool *infinite) {
	S5vOptions *opts = (S5vOptions *)index->rd_options;
	const char *value = "7 days";
	if (opts && opts->hot_window_offset != 0)
		value = (const char *)opts + opts->hot_window_offset;
	*infinite = pg_strcasecmp(value, "infinity") == 0;
	memset(out, 0, sizeof(Interval));
	if (!*infinite) {
		Interval *iv = DatumGetIntervalP(
		    DirectFunctionCall3(interval_in, CStringGetDatum(value), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
		*out = *iv;
	}
}

// The opclass's support function 1 is the SQL distance function; its name tells the metric.
s5v::Metric MetricOfIndex(Relation index) {
	Oid procid = index_getprocid(index, 1, 1);
	if (!OidIsValid(procid))
		ereport(ERROR,
		        (errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
		         errmsg("operator class of index \"%s\" has no distance function", RelationGetRelationName(index))));
	char *name = get_func_name(procid);
	if (name != nullptr) {
		if (strcmp(name, "vector_l2_squared_distance") == 0 || strcmp(name, "l2_distance") == 0)
			return s5v::Metric::L2;
		if (strcmp(name, "vector_negative_inner_product") == 0 || strcmp(name, "inner_product") == 0)
			return s5v::Metric::InnerProduct;
		if (strcmp(name, "cosine_distance") == 0)
			return s5v::Metric::Cosine;
		if (strcmp(name, "l1_distance") == 0)
			return s5v::Metric::L1;
	}
	ereport(ERROR, (errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
	                errmsg("unsupported distance function %s for access method s5vector", name ? name : "?")));
	pg_unreachable();
}

uint8 AgeKindOfIndex(Relation index) {
	if (IndexRelationGetNumberOfKeyAttributes(index) < 2)
		return S5V_AGE_NONE;
	Oid type = TupleDescAttr(RelationGetDescr(index), 1)->atttypid;
	switch (type) {
	case TIMESTAMPTZOID:
		return S5V_AGE_TIMESTAMPTZ;
	case TIMESTAMPOID:
		return S5V_AGE_TIMESTAMP;
	case DATEOID:
		return S5V_AGE_DATE;
	default:
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("the second column of an s5vector index must be of type timestamptz, timestamp or "
		                       "date, not %s",
		                       format_type_be(type))));
	}
	pg_unreachable();
}

void CheckIndexColumns(Relation index) {
	int nkeys = IndexRelationGetNumberOfKeyAttributes(index);
	int natts = IndexRelationGetNumberOfAttributes(index);
	if (nkeys > 2)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("an s5vector index has at most two key columns, not %d", nkeys),
		                errdetail("The first key column is the vector; the optional second is the row's age "
		                          "(timestamptz, timestamp or date)."),
		                errhint("Index further columns with a separate index, or filter on them in the query.")));
	if (natts != nkeys)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("access method \"s5vector\" does not support included columns")));
	// Only the vector operator classes have a distance function (support function 1).
	if (!OidIsValid(index_getprocid(index, 1, 1)))
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("the first column of an s5vector index must be of type vector, not %s",
		                       format_type_be(TupleDescAttr(RelationGetDescr(index), 0)->atttypid))));
	(void)MetricOfIndex(index);
	if (nkeys == 2)
		(void)AgeKindOfIndex(index);
}

int MaxLevelForM(int m) {
	int slots =
	    (int)((S5V_PAGE_FREE_SPACE - offsetof(S5vNeighborTupleData, tids) - MAXIMUM_ALIGNOF) / sizeof(ItemPointerData));
	int level = slots / m - 2;
	return Min(level, 15);
}

void InitPage(Page page, uint16 page_type) {
	PageInit(page, BLCKSZ, sizeof(S5vPageOpaqueData));
	S5vPageOpaque op = S5vPageGetOpaque(page);
	op->nextblkno = InvalidBlockNumber;
	op->page_type = page_type;
	op->page_id = S5V_PAGE_ID;
}

void ReportCorruptPage(Relation index, BlockNumber blkno) {
	ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
	                errmsg("index \"%s\" contains corrupted page at block %u", RelationGetRelationName(index), blkno),
	                errhint("Please REINDEX it.")));
	pg_unreachable();
}

void CheckPage(Relation index, Page page, BlockNumber blkno) {
	if (PageIsNew(page))
		ReportCorruptPage(index, blkno);
	CheckPageHeader(index, page, blkno);
	if (S5vPageGetOpaque(page)->page_id != S5V_PAGE_ID)
		ReportCorruptPage(index, blkno);
}

[[noreturn]] static void ReportCorruptTuple(Relation index, BlockNumber blk, OffsetNumber off, const char *what) {
	ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
	                errmsg("index \"%s\" contains a corrupted tuple at (%u,%u): %s", RelationGetRelationName(index),
	                       blk, off, what),
	                errhint("Please REINDEX it.")));
	pg_unreachable();
}

// The item at `off` if its bounds lie inside the page's data area; NULL for an unused slot.
static char *CheckedItem(Relation index, Page page, BlockNumber blk, OffsetNumber off, Size *len) {
	if (off < FirstOffsetNumber || off > PageGetMaxOffsetNumber(page))
		return nullptr;
	ItemId iid = PageGetItemId(page, off);
	if (!ItemIdIsNormal(iid)) {
		// s5vector writes only normal line pointers and frees them as unused (VACUUM); a redirect or dead one
		// is not ours, and skipping it would silently drop whatever it hides.
		if (ItemIdIsUsed(iid))
			ReportCorruptTuple(index, blk, off, "line pointer neither normal nor unused");
		return nullptr;
	}
	Size start = ItemIdGetOffset(iid);
	*len = ItemIdGetLength(iid);
	if (start < SizeOfPageHeaderData || start + *len > ((PageHeader)page)->pd_special || *len < 4)
		ReportCorruptTuple(index, blk, off, "item outside the page");
	return (char *)page + start;
}

S5vElementTuple GetElement(Relation index, Page page, BlockNumber blk, OffsetNumber off, uint32 dim) {
	// Cold tier: a cold page holds no element (the hot loops pass over it); any other non-hot type is corrupt.
	uint16 page_type = S5vPageGetOpaque(page)->page_type;
	if (unlikely(page_type != S5V_PAGE_HOT)) {
		if (IsColdPageType(page_type))
			return nullptr;
		ReportCorruptPage(index, blk);
	}
	Size len;
	char *item = CheckedItem(index, page, blk, off, &len);
	if (item == nullptr)
		return nullptr;
	uint8 type = (uint8)item[0];
	if (type == S5V_TUPLE_NEIGHBORS)
		return nullptr;
	if (type != S5V_TUPLE_ELEMENT || (uint8)item[1] != S5V_TUPLE_VERSION)
		ReportCorruptTuple(index, blk, off, "unknown tuple type or version");
	if (len < S5V_ELEMENT_SIZE(dim))
		ReportCorruptTuple(index, blk, off, "element shorter than its vector");
	if (((S5vElementTuple)item)->flags & ~(S5V_ELEMENT_DELETED | S5V_ELEMENT_AGE_NULL))
		ReportCorruptTuple(index, blk, off, "unknown element flags");
	return (S5vElementTuple)item;
}

S5vNeighborTuple GetNeighborTuple(Relation index, Page page, BlockNumber blk, OffsetNumber off) {
	Size len;
	char *item = CheckedItem(index, page, blk, off, &len);
	if (item == nullptr || (uint8)item[0] != S5V_TUPLE_NEIGHBORS)
		return nullptr;
	S5vNeighborTuple ntup = (S5vNeighborTuple)item;
	if (ntup->version != S5V_TUPLE_VERSION ||
	    offsetof(S5vNeighborTupleData, tids) + sizeof(ItemPointerData) * ntup->count > len)
		ReportCorruptTuple(index, blk, off, "neighbour list longer than its tuple");
	return ntup;
}

S5vNeighborTuple NeighborTupleOf(Relation index, Buffer buf, BlockNumber blk, S5vElementTuple etup,
                                 BufferAccessStrategy strategy, Buffer *nbuf, bool tolerate_bad_page) {
	BlockNumber nblk = ItemPointerGetBlockNumber(&etup->neighbortid);
	OffsetNumber noff = ItemPointerGetOffsetNumber(&etup->neighbortid);
	*nbuf = buf;
	if (nblk != blk) {
		// A block outside the index (P_NEW included) would extend the file when read.
		if (nblk == S5V_METAPAGE_BLKNO || nblk >= RelationGetNumberOfBlocks(index)) {
			if (tolerate_bad_page)
				return nullptr;
			ReportCorruptTuple(index, blk, ItemPointerGetOffsetNumber(&etup->neighbortid),
			                   "neighbour tuple pointer outside the index");
		}
		*nbuf = ReadBufferExtended(index, MAIN_FORKNUM, nblk, RBM_NORMAL, strategy);
		LockBuffer(*nbuf, BUFFER_LOCK_SHARE);
	}
	Page npage = BufferGetPage(*nbuf);
	if (tolerate_bad_page && (PageIsNew(npage) || PageGetSpecialSize(npage) != MAXALIGN(sizeof(S5vPageOpaqueData))))
		return nullptr;
	CheckPage(index, npage, nblk);
	return GetNeighborTuple(index, npage, nblk, noff);
}

void ReleaseNeighborPage(Buffer buf, Buffer nbuf) {
	if (nbuf != buf)
		UnlockReleaseBuffer(nbuf);
}

void ReadMetaPageRaw(Relation index, S5vMetaPageData *out, BlockNumber *nblocks) {
	Buffer buf = ReadBuffer(index, S5V_METAPAGE_BLKNO);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	Page page = BufferGetPage(buf);
	if (PageIsNew(page)) {
		UnlockReleaseBuffer(buf);
		ReportCorruptPage(index, S5V_METAPAGE_BLKNO);
	}
	PageHeader ph = (PageHeader)page;
	if (ph->pd_special != BLCKSZ - MAXALIGN(sizeof(S5vPageOpaqueData)) || ph->pd_lower > ph->pd_upper ||
	    ph->pd_upper > ph->pd_special || S5vPageGetOpaque(page)->page_id != S5V_PAGE_ID) {
		UnlockReleaseBuffer(buf);
		ReportCorruptPage(index, S5V_METAPAGE_BLKNO);
	}
	S5vMetaPage meta = S5vPageGetMeta(page);
	uint32 magic = meta->magic, version = meta->version;
	if (magic != S5V_MAGIC || S5vPageGetOpaque(page)->page_type != S5V_PAGE_META) {
		UnlockReleaseBuffer(buf);
		ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
		                errmsg("index \"%s\" is not a valid s5vector index: bad magic number in metapage",
		                       RelationGetRelationName(index)),
		                errhint("Please REINDEX it.")));
	}
	if (version != S5V_FORMAT_VERSION) {
		UnlockReleaseBuffer(buf);
		// An older format is a known layout this build no longer reads: not corruption, but it must be rebuilt.
		if (version >= 1 && version < S5V_FORMAT_VERSION)
			ereport(ERROR,
			        (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			         errmsg("index \"%s\" has on-disk format version %u, this build of s5vector reads version %d",
			                RelationGetRelationName(index), version, S5V_FORMAT_VERSION),
			         errhint("REINDEX the index.")));
		ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
		                errmsg("index \"%s\" has format version %u, this build of s5vector reads version %d",
		                       RelationGetRelationName(index), version, S5V_FORMAT_VERSION),
		                errhint("REINDEX the index.")));
	}
	memcpy(out, meta, sizeof(S5vMetaPageData));
	// Under the metapage lock: every block the metapage points at was added before it was written.
	*nblocks = RelationGetNumberOfBlocks(index);
	UnlockReleaseBuffer(buf);
}

namespace {
struct ProblemList {
	char **items;
	int cap;
	int count;
	void Add(char *text) {
		if (count < cap)
			items[count] = text;
		count++;
	}
};

bool AllZero(const void *p, Size len) {
	const uint8 *b = (const uint8 *)p;
	for (Size i = 0; i < len; i++)
		if (b[i] != 0)
			return false;
	return true;
}

// A block pointer of the metapage: InvalidBlockNumber or a data block that exists.
bool BlockPointerOk(BlockNumber blk, BlockNumber nblocks) {
	return blk == InvalidBlockNumber || (blk > S5V_METAPAGE_BLKNO && blk < nblocks);
}
} // namespace

int CheckMetaPage(Relation index, const S5vMetaPageData *meta, BlockNumber nblocks, char **problems, int cap) {
	ProblemList p{problems, cap, 0};
	int typmod = TupleDescAttr(RelationGetDescr(index), 0)->atttypmod;
	if (meta->dimensions < 1 || meta->dimensions > S5V_MAX_DIM)
		p.Add(psprintf("dimensions: %u is outside 1 .. %d", meta->dimensions, S5V_MAX_DIM));
	else if (typmod >= 0 && (uint32)typmod != meta->dimensions)
		p.Add(psprintf("dimensions: %u, but the column is vector(%d)", meta->dimensions, typmod));

	s5v::Metric catalog_metric = MetricOfIndex(index);
	if (meta->metric < (uint8)s5v::Metric::L2 || meta->metric > (uint8)s5v::Metric::L1)
		p.Add(psprintf("metric: %u is not a metric (1 .. 4)", meta->metric));
	else if (meta->metric != (uint8)catalog_metric)
		p.Add(psprintf("metric: %u, but the operator class's metric is %u", meta->metric, (uint8)catalog_metric));

	uint8 catalog_age = AgeKindOfIndex(index);
	if (meta->age_kind > S5V_AGE_DATE)
		p.Add(psprintf("age_kind: %u is not an age kind (0 .. 3)", meta->age_kind));
	else if (meta->age_kind != catalog_age)
		p.Add(psprintf("age_kind: %u, but the age column gives %u", meta->age_kind, catalog_age));

	bool m_ok = meta->m >= S5V_MIN_M && meta->m <= S5V_MAX_M;
	if (!m_ok)
		p.Add(psprintf("m: %u is outside %d .. %d", meta->m, S5V_MIN_M, S5V_MAX_M));
	if (meta->ef_construction < S5V_MIN_EF_CONSTRUCTION || meta->ef_construction > S5V_MAX_EF_CONSTRUCTION)
		p.Add(psprintf("ef_construction: %u is outside %d .. %d", meta->ef_construction, S5V_MIN_EF_CONSTRUCTION,
		               S5V_MAX_EF_CONSTRUCTION));
	else if (m_ok && meta->ef_construction < 2 * meta->m)
		p.Add(psprintf("ef_construction: %u is less than 2 * m (%u)", meta->ef_construction, meta->m));
	if (m_ok && meta->max_level != MaxLevelForM(meta->m))
		p.Add(psprintf("max_level: %u, but m %u gives %d", meta->max_level, meta->m, MaxLevelForM(meta->m)));
	if (meta->lists < 0 || meta->lists > 32768)
		p.Add(psprintf("lists: %d is outside 0 .. 32768", meta->lists));

	uint8 infinite;
	memcpy(&infinite, &meta->hot_window_infinite, 1);
	if (infinite > 1)
		p.Add(psprintf("hot_window_infinite: %u is not a boolean", infinite));
	else if (infinite ? !AllZero(&meta->hot_window, sizeof(Interval))
	                  : (meta->hot_window.month < 0 || meta->hot_window.day < 0 || meta->hot_window.time < 0))
		p.Add(psprintf("hot_window: %d months %d days %lld us is %s", meta->hot_window.month, meta->hot_window.day,
		               (long long)meta->hot_window.time, infinite ? "set on an infinite window" : "negative"));
	if (!AllZero(meta->reserved0, sizeof(meta->reserved0)) || meta->reserved1 != 0)
		p.Add(pstrdup("reserved: not zero"));

	if (!BlockPointerOk(meta->entry_blkno, nblocks))
		p.Add(psprintf("entry_blkno: %u is not a data block of the index (%u blocks)", meta->entry_blkno, nblocks));
	else if (meta->entry_blkno == InvalidBlockNumber) {
		if (meta->entry_offno != InvalidOffsetNumber || meta->entry_level != -1)
			p.Add(psprintf("entry_offno/entry_level: (%u, %d) without an entry block", meta->entry_offno,
			               meta->entry_level));
	} else {
		if (meta->entry_offno < FirstOffsetNumber || meta->entry_offno > MaxOffsetNumber)
			p.Add(psprintf("entry_offno: %u is not an offset on a page", meta->entry_offno));
		if (meta->entry_level < 0 || (m_ok && meta->entry_level > meta->max_level) || meta->entry_level > 255)
			p.Add(psprintf("entry_level: %d is outside 0 .. max_level (%u)", meta->entry_level, meta->max_level));
	}
	if (!BlockPointerOk(meta->insert_page, nblocks))
		p.Add(psprintf("insert_page: %u is not a data block of the index (%u blocks)", meta->insert_page, nblocks));
	if (!BlockPointerOk(meta->cold_metapage, nblocks))
		p.Add(psprintf("cold_metapage: %u is not a data block of the index (%u blocks)", meta->cold_metapage, nblocks));
	if (meta->hot_elements < 0)
		p.Add(psprintf("hot_elements: %lld is negative", (long long)meta->hot_elements));
	if (meta->hot_deleted < 0)
		p.Add(psprintf("hot_deleted: %lld is negative", (long long)meta->hot_deleted));
	if (AllZero(meta->index_id, sizeof(meta->index_id)))
		p.Add(pstrdup("index_id: all zero"));
	const S5vWorkerStateData &w = meta->worker;
	if (w.last_migration < 0 || w.last_offload < 0 || w.last_gc < 0)
		p.Add(pstrdup("worker: a negative timestamp"));
	if (!BlockPointerOk(w.gc_queue_head, nblocks))
		p.Add(psprintf("worker.gc_queue_head: %u is not a data block of the index", w.gc_queue_head));
	if (!BlockPointerOk(w.migration_cursor, nblocks))
		p.Add(psprintf("worker.migration_cursor: %u is not a data block of the index", w.migration_cursor));
	if (!AllZero(w.reserved, sizeof(w.reserved)))
		p.Add(pstrdup("worker.reserved: not zero"));
	return p.count;
}

void ReadMetaPage(Relation index, S5vMetaPageData *out) {
	BlockNumber nblocks;
	ReadMetaPageRaw(index, out, &nblocks);
	char *problems[4];
	int n = CheckMetaPage(index, out, nblocks, problems, lengthof(problems));
	if (n > 0) {
		StringInfoData detail;
		initStringInfo(&detail);
		for (int i = 0; i < Min(n, (int)lengthof(problems)); i++)
			appendStringInfo(&detail, "%sMetapage field %s.", i > 0 ? " " : "", problems[i]);
		ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
		                errmsg("index \"%s\" has a corrupted metapage", RelationGetRelationName(index)),
		                errdetail("%s", detail.data), errhint("REINDEX the index.")));
	}
}

const IndexInfoCache &GetIndexInfo(Relation index) {
	if (index->rd_amcache == nullptr) {
		CheckIndexColumns(index); // an index from before the column check could have more
		S5vMetaPageData meta;
		ReadMetaPage(index, &meta);
		IndexInfoCache *info = (IndexInfoCache *)MemoryContextAllocZero(index->rd_indexcxt, sizeof(IndexInfoCache));
		info->dimensions = meta.dimensions;
		info->metric = (s5v::Metric)meta.metric;
		info->age_kind = meta.age_kind;
		info->m = meta.m;
		info->ef_construction = meta.ef_construction;
		info->max_level = meta.max_level;
		index->rd_amcache = info;
	}
	return *(IndexInfoCache *)index->rd_amcache;
}

bool PrepareVector(const IndexInfoCache &info, Datum value, float *out) {
	VectorData *v = DatumGetVector(value);
	if ((uint32)v->dim != info.dimensions)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
		                errmsg("expected %u dimensions, not %d", info.dimensions, (int)v->dim)));
	if (info.metric == s5v::Metric::Cosine) {
		double norm = 0.0;
		for (int i = 0; i < v->dim; i++)
			norm += (double)v->x[i] * (double)v->x[i];
		norm = sqrt(norm);
		if (norm == 0.0 || !isfinite(norm))
			return false;
		for (int i = 0; i < v->dim; i++)
			out[i] = (float)(v->x[i] / norm);
	} else {
		memcpy(out, v->x, sizeof(float) * v->dim);
	}
	return true;
}

int64 RowAge(const IndexInfoCache &info, const Datum *values, const bool *isnull, uint8 *flags) {
	if (info.age_kind != S5V_AGE_NONE && isnull[1]) {
		*flags |= S5V_ELEMENT_AGE_NULL;
		return GetCurrentTimestamp();
	}
	return AgeFromDatum(info.age_kind, info.age_kind == S5V_AGE_NONE ? (Datum)0 : values[1]);
}

int64 AgeFromDatum(uint8 age_kind, Datum value) {
	switch (age_kind) {
	case S5V_AGE_TIMESTAMPTZ:
		return DatumGetTimestampTz(value);
	case S5V_AGE_TIMESTAMP:
		return DatumGetTimestamp(value);
	case S5V_AGE_DATE: {
		DateADT d = DatumGetDateADT(value);
		if (DATE_IS_NOBEGIN(d))
			return PG_INT64_MIN;
		if (DATE_IS_NOEND(d))
			return PG_INT64_MAX;
		return (int64)d * USECS_PER_DAY;
	}
	default:
		return GetCurrentTimestamp();
	}
}

} // namespace s5v::pg
