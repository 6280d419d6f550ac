// libFuzzer target: the cold-segment decoder must reject or accept any input without crashing or over-reading.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/s5/segment.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	s5v::s5::SegmentLimits limits;
	limits.max_total_bytes = 1 << 20;
	s5v::s5::SegmentView view;
	// Copy into an exact-size heap buffer so AddressSanitizer sees any read past the end.
	std::vector<uint8_t> buf(data, data + size);
	s5v::Status st = s5v::s5::DecodeSegment(buf, limits, &view);
	if (st.ok()) {
		// Everything the view promises must be readable and re-encode to the same bytes.
		std::vector<float> vectors(view.header.row_count * view.header.dims);
		view.CopyVectors(vectors);
		std::vector<uint64_t> ids;
		for (uint64_t i = 0; i < view.header.row_count; i++)
			ids.push_back(view.RowId(i));
		std::vector<uint8_t> again;
		if (!s5v::s5::EncodeSegment(view.header, vectors, ids, limits, &again).ok() || again != buf)
			__builtin_trap();
	}
	return 0;
}
