// Reading the whole hot graph into plain arrays, and its connectivity.
extern "C" {
#include "postgres.h"

#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"
}

#include "pg/graph_load.h"

#include <unordered_map>

namespace s5v::pg {

void LoadGraph(Relation index, const IndexInfoCache &info, BufferAccessStrategy strategy, LoadedGraph *out) {
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	int64 cap = 1024, n = 0;
	LoadedElement *els = (LoadedElement *)palloc_extended(sizeof(LoadedElement) * cap, MCXT_ALLOC_HUGE);
	out->bad_pages = 0;
	out->missing_neighbor_tuples = 0;
	for (BlockNumber blk = S5V_METAPAGE_BLKNO + 1; blk < nblocks; blk++) {
		CHECK_FOR_INTERRUPTS();
		Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, blk, RBM_NORMAL, strategy);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		Page page = BufferGetPage(buf);
		if (PageIsNew(page) || PageGetSpecialSize(page) != MAXALIGN(sizeof(S5vPageOpaqueData)) ||
		    S5vPageGetOpaque(page)->page_id != S5V_PAGE_ID) {
			out->bad_pages += PageIsNew(page) ? 0 : 1;
			UnlockReleaseBuffer(buf);
			continue;
		}
		OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
		for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++) {
			S5vElementTuple etup = GetElement(index, page, blk, off, info.dimensions);
			if (etup == nullptr)
				continue;
			if (n == cap) {
				cap *= 2;
				els = (LoadedElement *)repalloc_huge(els, sizeof(LoadedElement) * cap);
			}
			LoadedElement *e = &els[n++];
			e->id = NodeIdFromTid(blk, off);
			e->heaptid = etup->heaptid;
			e->level = etup->level;
			e->flags = etup->flags;
			e->nlinks = 0;
			int slots = S5V_NEIGHBOR_SLOTS(info.m, etup->level);
			e->links = (uint64 *)palloc(sizeof(uint64) * slots);
			e->link_levels = (int8 *)palloc(slots);
			// A neighbour TID outside the index (P_NEW would extend it) counts as a missing neighbour tuple.
			BlockNumber nblk = ItemPointerGetBlockNumberNoCheck(&etup->neighbortid);
			if (nblk == S5V_METAPAGE_BLKNO || nblk >= nblocks) {
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
		UnlockReleaseBuffer(buf);
	}
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
