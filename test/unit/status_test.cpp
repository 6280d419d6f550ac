// Status values: a fetch that follows a durable reference reports a missing object as corruption.
#include "core/status.h"

#include <gtest/gtest.h>

using s5v::Status;
using s5v::StatusCode;

TEST(ReferencedObject, NotFoundBecomesCorrupt) {
	Status st = s5v::ReferencedObject(Status::NotFound("s5: blob not found (HTTP 404 from http://x/s5/blob/u1)"));
	EXPECT_EQ(st.code(), StatusCode::Corrupt);
	EXPECT_NE(st.message().find("referenced object is missing"), std::string::npos);
	EXPECT_NE(st.message().find("HTTP 404"), std::string::npos);
}

TEST(ReferencedObject, OtherStatusesUnchanged) {
	EXPECT_TRUE(s5v::ReferencedObject(Status::Ok()).ok());
	EXPECT_EQ(s5v::ReferencedObject(Status::Unavailable("down")).code(), StatusCode::Unavailable);
	EXPECT_EQ(s5v::ReferencedObject(Status::Cancelled()).code(), StatusCode::Cancelled);
	EXPECT_EQ(s5v::ReferencedObject(Status::Corrupt("bad")).message(), "bad");
}
