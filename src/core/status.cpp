#include "status.h"

namespace s5v {

const char *StatusCodeName(StatusCode code) noexcept {
	switch (code) {
	case StatusCode::Ok:
		return "ok";
	case StatusCode::InvalidInput:
		return "invalid input";
	case StatusCode::LimitExceeded:
		return "limit exceeded";
	case StatusCode::Corrupt:
		return "corrupt";
	case StatusCode::Unavailable:
		return "unavailable";
	case StatusCode::NotFound:
		return "not found";
	case StatusCode::Cancelled:
		return "cancelled";
	case StatusCode::OutOfMemory:
		return "out of memory";
	case StatusCode::External:
		return "external";
	case StatusCode::Internal:
		return "internal";
	}
	return "unknown";
}

} // namespace s5v
