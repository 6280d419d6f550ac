// Reading the whole hot graph into plain arrays, and its connectivity.
extern "C" {
#include "postgres.h"

#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"
}

#include "pg/graph_load.h"
#include "pg/page_iter.h"

#include <cmath>
#include <unordered_map>

namespace s5v::pg {

void LoadGraph(Relation index, const IndexInfoCache &info, BufferAccessStrategy strategy, LoadedGraph *out,
               S5vPageIter *iter, int64 *nonfinite_vectors) {
	int64 cap = 1024, n = 0;
	LoadedElement *els = (LoadedElement *)palloc_extended(sizeof(LoadedElement) * cap, MCXT_ALLOC_HUGE);
	out->missing_neighbor_tuples = 0;
	if (nonfinite_vectors != nullptr)
		*nonfinite_vectors = 0;
	// Hot pages; a page that is not ours (or of a type this build does not know) is counted, not fatal.
	S5vPageIter local_it;
	S5vPageIter *it = iter != nullptr ? iter : &local_it;
	PageIterBegin(it, index, S5V_PAGE_MASK(S5V_PAGE_HOT), BUFFER_LOCK_SHARE, strategy, S5V_PAGE_ITER_COUNT_BAD);
	BlockNumber nblocks = it->nblocks;
	while (PageIterNext(it)) {
		BlockNumber blk = it->blkno;
		Buffer buf = it->buf;
		Page page = it->page;
		OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
		for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++) {
			S5vElementTuple etup = GetElement(index, page, blk, off, info.dimensions);
			if (etup == nullptr)
				continue;
			if (n == cap) {
				cap *= 2;
				els = (LoadedElement *)repalloc_huge(els, sizeof(LoadedElement) * cap);
			}
			if (nonfinite_vectors != nullptr)
				for (uint32 d = 0; d < info.dimensions; d++)
					if (!std::isfinite(etup->x[d])) {
						(*nonfinite_vectors)++;
						break;
					}
			LoadedElement *e = &els[n++];
			e->id = NodeIdFromTid(blk, off);
			e->heaptid = etup->heaptid;
			e->level = etup->level;
			e->flags = etup->flags;
			e->nlinks = 0;
			int slots = S5V_NEIGHBOR_SLOTS(info.m, Min((int)etup->level, info.max_level));
			e->links = (uint64 *)palloc(sizeof(uint64) * slots);
			e->link_levels = (int8 *)palloc(slots);
			// A level above the index's maximum, or a neighbour TID outside the index (P_NEW would extend it),
			// counts as a missing neighbour tuple.
			BlockNumber nblk = ItemPointerGetBlockNumberNoCheck(&etup->neighbortid);
			if (etup->level > info.max_level || nblk == S5V_METAPAGE_BLKNO || nblk >= nblocks) {
				out->missing_neighbor_tuples++;
				continue;
			}
			Buffer nbuf;
			S5vNeighborTuple ntup = NeighborTupleOf(index, buf, blk, etup, strategy, &nbuf, true);
			if (ntup == nullptr || ntup->count != slots) {
				out->missing_neighbor_tuples++;
			} else {
				for (int s = 0; s < slots; s++) {
					ItemPointer t = &ntup->tids[s];
					if (!ItemPointerIsValid(t))
						continue;
					e->links[e->nlinks] = NodeIdFromTid(ItemPointerGetBlockNumber(t), ItemPointerGetOffsetNumber(t));
					e->link_levels[e->nlinks] = (int8)(s < 2 * info.m ? 0 : 1 + (s - 2 * info.m) / info.m);
					e->nlinks++;
				}
			}
			ReleaseNeighborPage(buf, nbuf);
		}
	}
	PageIterEnd(it);
	out->bad_pages = it->bad_pages;
	out->elements = els;
	out->count = n;
}

Status BuildCsr(const LoadedGraph &graph, uint64 entry, GraphCsr &out) {
	const int64 n = graph.count;
	std::unordered_map<uint64, uint32_t> index_of;
	index_of.reserve(n);
	for (int64 i = 0; i < n; i++)
		index_of.emplace(graph.elements[i].id, (uint32_t)i);
	out.offsets.assign(n + 1, 0);
	out.targets.clear();
	out.live.assign(n, 0);
	out.ids.assign(n, 0);
	for (int64 i = 0; i < n; i++) {
		const LoadedElement &e = graph.elements[i];
		out.offsets[i] = (uint32_t)out.targets.size();
		out.live[i] = !(e.flags & S5V_ELEMENT_DELETED);
		out.ids[i] = e.id;
		for (int k = 0; k < e.nlinks; k++) {
			auto it = index_of.find(e.links[k]);
			if (it != index_of.end())
				out.targets.push_back(it->second);
		}
	}
	out.offsets[n] = (uint32_t)out.targets.size();
	auto ep = index_of.find(entry);
	out.entry_index = ep == index_of.end() ? UINT32_MAX : ep->second;
	return Status::Ok();
}

Status UnreachableElements(const LoadedGraph &graph, uint64 entry, std::vector<uint64> &out) {
	out.clear();
	GraphCsr csr;
	S5V_RETURN_IF_ERROR(BuildCsr(graph, entry, csr));
	std::vector<uint32_t> lost;
	S5V_RETURN_IF_ERROR(hnsw::FindUnreachable(csr.offsets, csr.targets, csr.entry_index, csr.live, lost));
	for (uint32_t i : lost)
		out.push_back(graph.elements[i].id);
	return Status::Ok();
}

} // namespace s5v::pg
