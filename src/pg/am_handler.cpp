// The access method's handler: capabilities, cost estimation, operator class validation, options, build phases.
extern "C" {
#include "postgres.h"

#include "access/amapi.h"
#include "access/amvalidate.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "catalog/pg_amop.h"
#include "catalog/pg_amproc.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "commands/progress.h"
#include "commands/vacuum.h"
#include "catalog/namespace.h"
#include "utils/spccache.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/paths.h"
#include "utils/regproc.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/selfuncs.h"
#include "utils/syscache.h"
}

#include "pg/am.h"
#include "pg/gucs.h"
#include "pg/index.h"
#include "pg/cold_build.h"

extern "C" bytea *s5vector_options_internal(Datum reloptions, bool validate);

namespace s5v::pg {

// The planner must use the index for ORDER BY <distance> LIMIT and never otherwise: without an ordering
// operator the cost is infinite. With one, the search visits about ef_search * m elements (more when an age
// predicate rejects most of them), all before the first row comes back. Its cost is that share of a sequential
// scan of the heap, weighted for random access: the planner's own sequential scan cost leaves out the detoasting
// and the distance of every row, so comparing pages with pages would favour it wrongly.
static void CostEstimate(PlannerInfo *root, IndexPath *path, double loop_count, Cost *indexStartupCost,
                         Cost *indexTotalCost, Selectivity *indexSelectivity, double *indexCorrelation,
                         double *indexPages) {
	// The scan orders by one distance to the vector (key column 1) and evaluates conditions on the age column
	// (key column 2) only: a path asking for anything else would have it silently ignored, so it is never chosen.
	bool usable = path->indexorderbys != NIL && list_length(path->indexorderbys) == 1 &&
	              linitial_int(path->indexorderbycols) == 0;
	ListCell *lc;
	foreach (lc, path->indexclauses) {
		IndexClause *iclause = lfirst_node(IndexClause, lc);
		if (iclause->indexcol != 1)
			usable = false;
	}
	if (!usable) {
		*indexStartupCost = get_float8_infinity();
		*indexTotalCost = get_float8_infinity();
		*indexSelectivity = 0;
		*indexCorrelation = 0;
		*indexPages = 0;
		return;
	}
	GenericCosts costs;
	memset(&costs, 0, sizeof(costs));
	genericcostestimate(root, path, loop_count, &costs);

	Relation index = index_open(path->indexinfo->indexoid, NoLock);
	int m = OptionM(index);
	index_close(index, NoLock);

	RelOptInfo *rel = path->indexinfo->rel;
	double tuples = Max(Max(rel->tuples, path->indexinfo->tuples), 1.0);
	double spc_seq_page_cost;
	get_tablespace_page_costs(rel->reltablespace, NULL, &spc_seq_page_cost);
	double heap_cost = rel->pages * spc_seq_page_cost + tuples * (cpu_tuple_cost + cpu_operator_cost);
	double levels = Max(1.0, log(tuples) / log((double)Max(m, 2)));
	double visited = (double)s5v_ef_search * m + levels * m;
	// An age predicate that keeps a fraction s of the rows makes the search walk about 1/s times as far.
	visited /= Max(costs.indexSelectivity, 0.001);
	double ratio = Min(1.0, visited / tuples);
	const double random_access_factor = 3.0;
	Cost startup = random_access_factor * ratio * heap_cost + costs.indexStartupCost;
	*indexStartupCost = startup;
	*indexTotalCost = startup + tuples * costs.indexSelectivity * cpu_index_tuple_cost;
	*indexSelectivity = costs.indexSelectivity;
	*indexCorrelation = 0;
	*indexPages = Max(1.0, ceil(costs.numIndexPages * ratio));
}

static bytea *Options(Datum reloptions, bool validate) {
	return s5vector_options_internal(reloptions, validate);
}

static char *BuildPhaseName(int64 phase) {
	switch (phase) {
	case PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE:
		return pstrdup("initializing");
	case S5V_PHASE_LOAD:
		return pstrdup("loading tuples");
	case S5V_PHASE_WRITE:
		return pstrdup("writing pages");
	case S5V_PHASE_COLD_SAMPLE: // cold tier (cold_build.h)
		return pstrdup("loading tuples, sampling cold rows");
	case S5V_PHASE_COLD_TRAIN:
		return pstrdup("training cold centroids");
	case S5V_PHASE_COLD_ASSIGN:
		return pstrdup("assigning and writing cold rows");
	case S5V_PHASE_COLD_UPLOAD: // CREATE INDEX with S5 configured (cold_upload.h)
		return pstrdup("uploading segments");
	default:
		return nullptr;
	}
}

// A real amvalidate (as contrib/bloom's): every member of the opclass has a strategy, purpose and signature
// this access method understands.
static bool Validate(Oid opclassoid) {
	bool result = true;
	HeapTuple classtup = SearchSysCache1(CLAOID, ObjectIdGetDatum(opclassoid));
	if (!HeapTupleIsValid(classtup))
		elog(ERROR, "cache lookup failed for operator class %u", opclassoid);
	Form_pg_opclass classform = (Form_pg_opclass)GETSTRUCT(classtup);
	Oid opfamilyoid = classform->opcfamily;
	Oid opcintype = classform->opcintype;
	char *opclassname = NameStr(classform->opcname);
	Oid vectoroid = TypenameGetTypid("vector");
	bool is_vector = OidIsValid(vectoroid) && opcintype == vectoroid;
	bool is_age = opcintype == TIMESTAMPTZOID || opcintype == TIMESTAMPOID || opcintype == DATEOID;

	if (!is_vector && !is_age) {
		ereport(INFO, (errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
		               errmsg("s5vector operator class \"%s\" is for unsupported type %s", opclassname,
		                      format_type_be(opcintype))));
		result = false;
	}

	CatCList *proclist = SearchSysCacheList1(AMPROCNUM, ObjectIdGetDatum(opfamilyoid));
	CatCList *oprlist = SearchSysCacheList1(AMOPSTRATEGY, ObjectIdGetDatum(opfamilyoid));
	bool has_distance_proc = false;
	for (int i = 0; i < proclist->n_members; i++) {
		Form_pg_amproc procform = (Form_pg_amproc)GETSTRUCT(&proclist->members[i]->tuple);
		if (procform->amproclefttype != opcintype || procform->amprocrighttype != opcintype)
			continue;
		bool ok = is_vector && procform->amprocnum == 1 &&
		          check_amproc_signature(procform->amproc, FLOAT8OID, true, 2, 2, opcintype, opcintype);
		if (!ok) {
			ereport(INFO, (errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
			               errmsg("s5vector operator class \"%s\" has invalid support function %s with number %d",
			                      opclassname, format_procedure(procform->amproc), procform->amprocnum)));
			result = false;
		} else {
			has_distance_proc = true;
		}
	}
	int ordering_ops = 0;
	for (int i = 0; i < oprlist->n_members; i++) {
		Form_pg_amop oprform = (Form_pg_amop)GETSTRUCT(&oprlist->members[i]->tuple);
		if (oprform->amoplefttype != opcintype)
			continue;
		bool ok;
		if (oprform->amoppurpose == AMOP_ORDER) {
			ok = is_vector && oprform->amopstrategy == 1 && OidIsValid(oprform->amopsortfamily) &&
			     check_amop_signature(oprform->amopopr, FLOAT8OID, oprform->amoplefttype, oprform->amoprighttype);
			ordering_ops += ok;
		} else {
			ok = is_age && oprform->amopstrategy >= 1 && oprform->amopstrategy <= 5 &&
			     check_amop_signature(oprform->amopopr, BOOLOID, oprform->amoplefttype, oprform->amoprighttype);
		}
		if (!ok) {
			ereport(INFO, (errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
			               errmsg("s5vector operator class \"%s\" has invalid operator %s with strategy %d",
			                      opclassname, format_operator(oprform->amopopr), oprform->amopstrategy)));
			result = false;
		}
	}
	if (is_vector && (!has_distance_proc || ordering_ops != 1)) {
		ereport(INFO, (errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
		               errmsg("s5vector operator class \"%s\" needs one distance function and one ordering operator",
		                      opclassname)));
		result = false;
	}
	ReleaseCatCacheList(proclist);
	ReleaseCatCacheList(oprlist);
	ReleaseSysCache(classtup);
	return result;
}

} // namespace s5v::pg

extern "C" {
PG_FUNCTION_INFO_V1(s5vectorhandler);
PGDLLEXPORT Datum s5vectorhandler(PG_FUNCTION_ARGS);
}

Datum s5vectorhandler(PG_FUNCTION_ARGS) {
	IndexAmRoutine *am = makeNode(IndexAmRoutine);
	am->amstrategies = 5;
	am->amsupport = 1;
	am->amoptsprocnum = 0;
	am->amcanorder = false;
	am->amcanorderbyop = true;
	am->amcanbackward = false;
	am->amcanunique = false;
	am->amcanmulticol = true;
	am->amoptionalkey = true;
	am->amsearcharray = false;
	am->amsearchnulls = false;
	am->amstorage = false;
	am->amclusterable = false;
	am->ampredlocks = false;
	am->amcanparallel = false;
#if PG_VERSION_NUM >= 170000
	am->amcanbuildparallel = true; // PostgreSQL 15 has no such flag: Build asks plan_create_index_workers itself
#endif
	am->amcaninclude = false;
	am->amusemaintenanceworkmem = true;
	am->amparallelvacuumoptions = VACUUM_OPTION_NO_PARALLEL;
	am->amkeytype = InvalidOid;

	am->ambuild = s5v::pg::Build;
	am->ambuildempty = s5v::pg::BuildEmpty;
	am->aminsert = s5v::pg::Insert;
	am->ambulkdelete = s5v::pg::BulkDelete;
	am->amvacuumcleanup = s5v::pg::VacuumCleanup;
	am->amcanreturn = nullptr;
	am->amcostestimate = s5v::pg::CostEstimate;
	am->amoptions = s5v::pg::Options;
	am->amproperty = nullptr;
	am->ambuildphasename = s5v::pg::BuildPhaseName;
	am->amvalidate = s5v::pg::Validate;
	am->amadjustmembers = nullptr;
	am->ambeginscan = s5v::pg::BeginScan;
	am->amrescan = s5v::pg::ReScan;
	am->amgettuple = s5v::pg::GetTuple;
	am->amgetbitmap = nullptr;
	am->amendscan = s5v::pg::EndScan;
	am->ammarkpos = nullptr;
	am->amrestrpos = nullptr;
	am->amestimateparallelscan = nullptr;
	am->aminitparallelscan = nullptr;
	am->amparallelrescan = nullptr;
	PG_RETURN_POINTER(am);
}
