// Cancellation hook: long core loops poll it and return Status::Cancelled().
#pragma once

namespace s5v {

class CancelToken {
public:
	virtual ~CancelToken() = default;
	virtual bool cancelled() const noexcept = 0;
};

// The zero-cost default: never cancelled.
class NeverCancel final : public CancelToken {
public:
	bool cancelled() const noexcept override { return false; }
};

} // namespace s5v
