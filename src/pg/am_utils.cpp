// Shared helpers of the access method: options, metric from the opclass, metapage, page checks, value conversion.
extern "C" {
#include "postgres.h"

#include <math.h>

#include "access/reloptions.h"
#include "catalog/pg_type.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

#include "pg/index.h"
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
}

extern "C" bytea *s5vector_options_internal(Datum reloptions, bool validate);

} // namespace s5v::pg

extern "C" bytea *s5vector_options_internal(Datum reloptions, bool validate) {
	static const relopt_parse_elt tab[] = {
	    {"m", RELOPT_TYPE_INT, offsetof(S5vOptions, m)},
	    {"ef_construction", RELOPT_TYPE_INT, offsetof(S5vOptions, ef_construction)},
	    {"lists", RELOPT_TYPE_INT, offsetof(S5vOptions, lists)},
	    {"hot_window", RELOPT_TYPE_STRING, offsetof(S5vOptions, hot_window_offset)},
	};
	return (bytea *)build_reloptions(reloptions, validate, s5v::pg::s5v_relopt_kind, sizeof(S5vOptions), tab,
	                                 lengthof(tab));
}

namespace s5v::pg {

int OptionM(Relation index) {
	S5vOptions *opts = (S5vOptions *)index->rd_options;
	return opts ? opts->m : S5V_DEFAULT_M;
}

int OptionEfConstruction(Relation index) {
	S5vOptions *opts = (S5vOptions *)index->rd_options;
	return opts ? opts->ef_construction : S5V_DEFAULT_EF_CONSTRUCTION;
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
	if (!ItemIdIsNormal(iid))
		return nullptr;
	Size start = ItemIdGetOffset(iid);
	*len = ItemIdGetLength(iid);
	if (start < SizeOfPageHeaderData || start + *len > ((PageHeader)page)->pd_special || *len < 4)
		ReportCorruptTuple(index, blk, off, "item outside the page");
	return (char *)page + start;
}

S5vElementTuple GetElement(Relation index, Page page, BlockNumber blk, OffsetNumber off, uint32 dim) {
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

void ReadMetaPage(Relation index, S5vMetaPageData *out) {
	Buffer buf = ReadBuffer(index, S5V_METAPAGE_BLKNO);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	Page page = BufferGetPage(buf);
	CheckPage(index, page, S5V_METAPAGE_BLKNO);
	S5vMetaPage meta = S5vPageGetMeta(page);
	if (meta->magic != S5V_MAGIC || S5vPageGetOpaque(page)->page_type != S5V_PAGE_META) {
		UnlockReleaseBuffer(buf);
		ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
		                errmsg("index \"%s\" is not a valid s5vector index: bad magic number in metapage",
		                       RelationGetRelationName(index)),
		                errhint("Please REINDEX it.")));
	}
	if (meta->version != S5V_FORMAT_VERSION) {
		uint32 v = meta->version;
		UnlockReleaseBuffer(buf);
		ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
		                errmsg("index \"%s\" has format version %u, this build of s5vector reads version %d",
		                       RelationGetRelationName(index), v, S5V_FORMAT_VERSION),
		                errhint("REINDEX it with this version of s5vector.")));
	}
	*out = *meta;
	UnlockReleaseBuffer(buf);
}

const IndexInfoCache &GetIndexInfo(Relation index) {
	if (index->rd_amcache == nullptr) {
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
