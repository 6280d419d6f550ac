// The merged search over candidate streams (see merge.h).
#include "merge.h"

#include <algorithm>
#include <new>

namespace s5v {

namespace {

struct PendingGreater {
	template <class P> bool operator()(const P &a, const P &b) const {
		// Ties: the smaller row id first, so that equal distances come out in a stable order.
		return a.distance > b.distance || (a.distance == b.distance && a.row > b.row);
	}
};

} // namespace

Status MergedSearch::AddStream(CandidateStream *stream) {
	if (stream == nullptr)
		return Status::InvalidInput("merge needs a stream");
	if (!failed_.ok())
		return failed_;
	try {
		sources_.push_back(Source{stream, false, 0});
	} catch (const std::bad_alloc &) {
		return Status::OutOfMemory("out of memory in merged search");
	}
	return Status::Ok();
}

Status MergedSearch::Pull(std::size_t i) {
	Source &src = sources_[i];
	ScoredRow row{};
	bool done = false;
	Status st = src.stream->Next(row, done);
	if (!st.ok()) {
		failed_ = st;
		return st;
	}
	if (done) {
		src.done = true;
		return Status::Ok();
	}
	pool_.push_back(Pending{row.distance, row.row, i});
	std::push_heap(pool_.begin(), pool_.end(), PendingGreater());
	src.waiting++;
	return Status::Ok();
}

std::size_t MergedSearch::Blocking(float best) const {
	std::size_t pick = static_cast<std::size_t>(-1);
	float pick_bound = 0;
	for (std::size_t i = 0; i < sources_.size(); ++i) {
		const Source &src = sources_[i];
		if (src.done)
			continue;
		float bound = src.stream->LowerBound();
		if (order_ == MergeOrder::Strict) {
			// NaN bounds count as unknown.
			if (!(bound >= best) && (pick == static_cast<std::size_t>(-1) || !(bound >= pick_bound))) {
				pick = i;
				pick_bound = bound;
			}
		} else if (src.waiting == 0) {
			return i;
		}
	}
	return pick;
}

Status MergedSearch::Next(ScoredRow &out, bool &done) {
	done = false;
	if (!failed_.ok())
		return failed_;
	try {
		for (;;) {
			const float best = pool_.empty() ? kNoMoreRows : pool_.front().distance;
			std::size_t blocking = Blocking(best);
			if (blocking != static_cast<std::size_t>(-1)) {
				S5V_RETURN_IF_ERROR(Pull(blocking));
				continue;
			}
			if (pool_.empty()) {
				done = true;
				return Status::Ok();
			}
			std::pop_heap(pool_.begin(), pool_.end(), PendingGreater());
			Pending p = pool_.back();
			pool_.pop_back();
			sources_[p.source].waiting--;
			if (!emitted_.insert(p.row).second)
				continue; // returned already (by another stream, or at a smaller distance)
			out = ScoredRow{p.distance, p.row};
			return Status::Ok();
		}
	} catch (const std::bad_alloc &) {
		failed_ = Status::OutOfMemory("out of memory in merged search");
		return failed_;
	}
}

SortedRowsStream::SortedRowsStream(std::vector<ScoredRow> rows) : rows_(std::move(rows)) {
	std::sort(rows_.begin(), rows_.end(), [](const ScoredRow &a, const ScoredRow &b) {
		return a.distance < b.distance || (a.distance == b.distance && a.row < b.row);
	});
}

Status SortedRowsStream::Next(ScoredRow &out, bool &done) {
	done = pos_ >= rows_.size();
	if (!done)
		out = rows_[pos_++];
	return Status::Ok();
}

float SortedRowsStream::LowerBound() const {
	return pos_ < rows_.size() ? rows_[pos_].distance : kNoMoreRows;
}

Status GraphStream::Next(ScoredRow &out, bool &done) {
	for (;;) {
		hnsw::Candidate c;
		S5V_RETURN_IF_ERROR(searcher_.Next(c, done));
		if (done) {
			bound_ = kNoMoreRows;
			return Status::Ok();
		}
		RowId row;
		if (!rows_.RowOf(c.node, row))
			continue;
		bound_ = c.distance;
		out = ScoredRow{c.distance, row};
		return Status::Ok();
	}
}

} // namespace s5v
