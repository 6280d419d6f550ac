// Keeping the cold tier's lists healthy without a rebuild (s5vector_rebalance, and migration when needed): a list
// far past the mean is split in two (2-means on its rows), a centroid that drifted from its rows is refreshed, and
// every row that is then no longer in the list of its nearest centroid moves there (add at the new place, wait for
// the scans, remove from the old one), so the per-list bounds of a strict scan stay honest (inverted_lists.h).
// Include after the PostgreSQL headers.
#pragma once

extern "C" {
#include "utils/rel.h"
}

namespace s5v::pg {

// A list is split when its live rows exceed this many times the mean (and S5V_REBALANCE_MIN_SPLIT_ROWS).
#define S5V_REBALANCE_SPLIT_FACTOR 3.0
#define S5V_REBALANCE_MIN_SPLIT_ROWS 64
// At most this many lists are split in one step.
#define S5V_REBALANCE_MAX_SPLITS 8

// Does the tier need a rebalance step? Cheap: the list directory only (centroid pages), no row page.
bool ColdRebalanceNeeded(Relation index);

// One rebalance step. The caller has opened `index` (RowExclusiveLock) and checked that it is an s5vector index,
// the privileges and that the server is not in recovery. Serialised with other steps by a ShareUpdateExclusiveLock
// on the index (with `wait` false, returns -1 at once when another step holds it). Reads every cold row twice (a
// maintenance pass, like VACUUM's). Returns the lists changed (split, refreshed, or new).
int ColdRebalance(Relation index, bool wait);

} // namespace s5v::pg
