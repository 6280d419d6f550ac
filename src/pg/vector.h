// The SQL type `vector`: its varlena layout and the helpers glue files need (type I/O lives in vector.cpp).
//
// The layout is pgvector's, byte for byte, so data, dumps and binary COPY move between the two:
//   int32 varlena header | int16 dim | int16 unused (always 0) | float4 x[dim]
//
// Include after the PostgreSQL headers (postgres.h first, inside extern "C"). Keep this header small and
// stable: the index access method includes it.
#pragma once

#include "fmgr.h"

#define VECTOR_MAX_DIM 16000

typedef struct VectorData {
	int32 vl_len_; // varlena header (never touch directly: SET_VARSIZE / VARSIZE)
	int16 dim;     // number of dimensions, 1..VECTOR_MAX_DIM
	int16 unused;  // reserved, always zero
	float x[FLEXIBLE_ARRAY_MEMBER];
} VectorData;

#define VECTOR_SIZE(dim_) (offsetof(VectorData, x) + sizeof(float) * (size_t)(dim_))
#define DatumGetVector(d) ((VectorData *)PG_DETOAST_DATUM(d))
#define PG_GETARG_VECTOR_P(n) DatumGetVector(PG_GETARG_DATUM(n))
#define PG_RETURN_VECTOR_P(v) PG_RETURN_POINTER(v)

// A zeroed vector of `dim` dimensions (palloc'd in the current memory context). `dim` must be valid.
static inline VectorData *InitVector(int dim) {
	Size size = VECTOR_SIZE(dim);
	VectorData *result = (VectorData *)palloc0(size);
	SET_VARSIZE(result, size);
	result->dim = (int16)dim;
	return result;
}

// Raise pgvector's errors for a dimension count outside 1..VECTOR_MAX_DIM.
static inline void CheckDim(int dim) {
	if (dim < 1)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("vector must have at least 1 dimension")));
	if (dim > VECTOR_MAX_DIM)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
		                errmsg("vector cannot have more than %d dimensions", VECTOR_MAX_DIM)));
}

// Raise pgvector's error when a typmod (-1 = none) does not match the dimension count.
static inline void CheckExpectedDim(int32 typmod, int dim) {
	if (typmod != -1 && typmod != dim)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("expected %d dimensions, not %d", (int)typmod, dim)));
}

// Raise pgvector's error when two operands differ in dimensions.
static inline void CheckDims(const VectorData *a, const VectorData *b) {
	if (a->dim != b->dim)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
		                errmsg("different vector dimensions %d and %d", (int)a->dim, (int)b->dim)));
}

// Order of the btree opclass: element by element, then the shorter vector first (like arrays).
int VectorCompare(const VectorData *a, const VectorData *b);
