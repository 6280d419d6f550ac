// Build and insert by age: which rows go cold, CREATE INDEX's cold part (sample, train, assign, write), and the
// insert of an old row into its list (or the staging list, trained when it fills). Plain PostgreSQL code (may
// ereport): call from plain frames. Include after the PostgreSQL headers.
#pragma once

#include "pg/cold_pages.h"

extern "C" {
#include "nodes/execnodes.h"
}

// Progress phases of CREATE INDEX (pg_stat_progress_create_index.phase) for the cold part; 2 and 3 are in am.h.
#define S5V_PHASE_COLD_SAMPLE 4 /* loading tuples: hot rows into the graph, cold rows counted and sampled */
#define S5V_PHASE_COLD_TRAIN 5  /* k-means on the sample */
#define S5V_PHASE_COLD_ASSIGN 6 /* second table scan: each cold row to its nearest list, written to its pages */
#define S5V_PHASE_COLD_UPLOAD 7 /* S5 configured: the sorted cold rows go up as segments (cold_upload.h) */

// Without a lists option (lists = 0) the cold tier trains once it has this many rows.
#define S5V_AUTO_TRAIN_ROWS 10000

namespace s5v::pg {

// Which rows go cold: decided once per build (and per insert, and per migration batch) from the index's hot_window.
struct ColdPolicy {
	bool enabled;  // false: every row is hot (hot_window 'infinity')
	bool all_cold; // hot_window '0': every row is cold (pure IVF)
	int64 cutoff;  // a row whose age is below this is cold (the age column's unit, see AgeFromDatum)
};

void ColdPolicyFor(const Interval &hot_window, bool infinite, uint8 age_kind, ColdPolicy *out);
// The policy of an existing index: its hot_window reloption as it is now (ALTER INDEX ... SET (hot_window = ...)
// changes it without a rebuild; the metapage keeps the window of the build), as inserts and migration use it.
void ColdPolicyOfIndex(Relation index, uint8 age_kind, ColdPolicy *out);

// `element_flags` are the hot element's flags (S5V_ELEMENT_AGE_NULL: a NULL age is never old).
inline bool ColdPolicyIsCold(const ColdPolicy &p, int64 age, uint8 element_flags) {
	if (!p.enabled)
		return false;
	if (p.all_cold)
		return true;
	return !(element_flags & S5V_ELEMENT_AGE_NULL) && age < p.cutoff;
}

// lists = 0: the number of lists for n cold rows (n / 1000 up to 1M rows, sqrt(n) above; at least 1).
uint32 AutoLists(int64 n);
// Cold rows needed to train `lists` lists (lists_option 0: S5V_AUTO_TRAIN_ROWS).
int64 TrainRowsFor(int lists_option);

// CREATE INDEX. Begin returns NULL when no row can go cold (the build is what it was without a cold tier).
struct ColdBuildState;
ColdBuildState *ColdBuildBegin(Relation index, const IndexInfoCache &info, int lists_option, const Interval &hot_window,
                               bool infinite, Size memory_limit);
bool ColdBuildWantsRow(const ColdBuildState *cb, int64 age, uint8 element_flags);
// Pass 1: count a cold row and offer it to the sample: its vector (the column's datum) is detoasted, prepared and
// checked only when the reservoir takes it (pass 2 does so for every cold row).
void ColdBuildOffer(ColdBuildState *cb, Datum value);
// After the graph is on pages: choose lists, train, write the tier (second table scan). Returns cold rows written.
double ColdBuildFinish(ColdBuildState *cb, Relation heap, Relation index, IndexInfo *indexInfo);

// INSERT: if the row is cold by the index's window, add it to the cold tier and return true (the caller skips the
// graph). The row's age and element flags as the hot insert computed them.
bool ColdInsertIfOld(Relation index, const IndexInfoCache &info, ItemPointer heap_tid, int64 age, uint8 element_flags,
                     const float *vec);

// Add one row to the cold tier (creating it if needed; staging trains when it fills). Caller holds the cold write
// lock; `meta` is the index metapage as read (its cold_metapage is updated). With skip_if_present, a row whose heap
// TID is already live in its target list is not added again (a migration that a crash interrupted); returns
// whether the row was added.
bool ColdAddRowLocked(Relation index, const IndexInfoCache &info, S5vMetaPageData &meta,
                      const ItemPointerData *heap_tid, int64 age, uint8 element_flags, const float *vec,
                      bool skip_if_present);

} // namespace s5v::pg
