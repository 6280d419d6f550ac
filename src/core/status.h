// Status values returned by the core: the only way errors leave src/core.
#pragma once

#include <string>
#include <utility>

namespace s5v {

enum class StatusCode : unsigned char {
	Ok = 0,
	InvalidInput,  // caller gave bad data or parameters
	LimitExceeded, // a size or count limit was hit
	Corrupt,       // stored data (page, blob) failed a check
	Unavailable,   // a remote service could not be reached or answered badly
	NotFound,      // a remote object does not exist (or is not available)
	Cancelled,     // the cancel token fired
	OutOfMemory,   // allocation failed
	External,      // the host (PostgreSQL) raised an error; the host keeps its details
	Internal,      // a bug: an invariant of the code itself does not hold
};

class [[nodiscard]] Status {
public:
	Status() = default;
	Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

	static Status Ok() { return Status(); }
	static Status InvalidInput(std::string m) { return {StatusCode::InvalidInput, std::move(m)}; }
	static Status LimitExceeded(std::string m) { return {StatusCode::LimitExceeded, std::move(m)}; }
	static Status Corrupt(std::string m) { return {StatusCode::Corrupt, std::move(m)}; }
	static Status Unavailable(std::string m) { return {StatusCode::Unavailable, std::move(m)}; }
	static Status NotFound(std::string m) { return {StatusCode::NotFound, std::move(m)}; }
	static Status Cancelled() { return {StatusCode::Cancelled, "canceling statement due to user request"}; }
	static Status OutOfMemory(std::string m) { return {StatusCode::OutOfMemory, std::move(m)}; }
	static Status External() { return {StatusCode::External, "error raised by the host"}; }
	static Status Internal(std::string m) { return {StatusCode::Internal, std::move(m)}; }

	bool ok() const { return code_ == StatusCode::Ok; }
	StatusCode code() const { return code_; }
	const std::string &message() const { return message_; }

private:
	StatusCode code_ = StatusCode::Ok;
	std::string message_;
};

const char *StatusCodeName(StatusCode code) noexcept;

// The status of fetching an object that durable data references (an index page, a manifest): the object missing
// there means data was lost, not that a service is unreachable, so NotFound becomes Corrupt (data_corrupted at
// the PostgreSQL edge); every other status is returned unchanged. A lookup the user asked for directly keeps
// NotFound.
inline Status ReferencedObject(Status st) {
	if (st.code() != StatusCode::NotFound)
		return st;
	return Status::Corrupt("a referenced object is missing: " + st.message());
}

} // namespace s5v

// Propagate a non-OK status to the caller.
#define S5V_RETURN_IF_ERROR(expr)                                                                                      \
	do {                                                                                                               \
		::s5v::Status s5v_status_ = (expr);                                                                            \
		if (!s5v_status_.ok())                                                                                         \
			return s5v_status_;                                                                                        \
	} while (0)
