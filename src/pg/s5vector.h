// Declarations shared by the glue files (src/pg). Include after the PostgreSQL headers.
#pragma once

namespace s5v::pg {

// Registered once from _PG_init.
void InitIndexOptions();
void InitGucs();

} // namespace s5v::pg
