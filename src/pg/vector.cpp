// The SQL type `vector`: text and binary I/O, typmod, casts, arithmetic, comparisons, distances, aggregates.
//
// Behaviour (accepted input, output text, binary format, error messages and SQLSTATEs, overflow checks) is
// pgvector's, so that users and client libraries cannot tell the two apart. Distances go through the kernels of
// src/core/distance.h. Everything here is plain C-style code: no C++ object with a destructor is ever alive
// when ereport() can jump.
extern "C" {
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/varbit.h"
}

#include "pg/vector.h"

#include "core/distance.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

// Every fmgr entry point: C linkage, exported, with its V1 info record.
#define S5V_VECTOR_FN(name)                                                                                            \
	PGDLLEXPORT Datum name(PG_FUNCTION_ARGS);                                                                          \
	PG_FUNCTION_INFO_V1(name)

extern "C" {
S5V_VECTOR_FN(vector_in);
S5V_VECTOR_FN(vector_out);
S5V_VECTOR_FN(vector_typmod_in);
S5V_VECTOR_FN(vector_recv);
S5V_VECTOR_FN(vector_send);
S5V_VECTOR_FN(vector);
S5V_VECTOR_FN(array_to_vector);
S5V_VECTOR_FN(vector_to_float4);
S5V_VECTOR_FN(l2_distance);
S5V_VECTOR_FN(vector_l2_squared_distance);
S5V_VECTOR_FN(inner_product);
S5V_VECTOR_FN(vector_negative_inner_product);
S5V_VECTOR_FN(cosine_distance);
S5V_VECTOR_FN(vector_spherical_distance);
S5V_VECTOR_FN(l1_distance);
S5V_VECTOR_FN(vector_dims);
S5V_VECTOR_FN(vector_norm);
S5V_VECTOR_FN(l2_normalize);
S5V_VECTOR_FN(binary_quantize);
S5V_VECTOR_FN(subvector);
S5V_VECTOR_FN(vector_add);
S5V_VECTOR_FN(vector_sub);
S5V_VECTOR_FN(vector_mul);
S5V_VECTOR_FN(vector_concat);
S5V_VECTOR_FN(vector_lt);
S5V_VECTOR_FN(vector_le);
S5V_VECTOR_FN(vector_eq);
S5V_VECTOR_FN(vector_ne);
S5V_VECTOR_FN(vector_ge);
S5V_VECTOR_FN(vector_gt);
S5V_VECTOR_FN(vector_cmp);
S5V_VECTOR_FN(vector_accum);
S5V_VECTOR_FN(vector_combine);
S5V_VECTOR_FN(vector_avg);
}

namespace {

// Elements must be finite numbers.
inline void CheckElement(float value) {
	if (std::isnan(value))
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("NaN not allowed in vector")));
	if (std::isinf(value))
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("infinite value not allowed in vector")));
}

// The whitespace array_in accepts (scanner_isspace): space, \t, \n, \r, \v, \f.
inline bool IsVectorSpace(char c) {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

inline const char *SkipSpaces(const char *p) {
	while (IsVectorSpace(*p))
		p++;
	return p;
}

[[noreturn]] void InvalidVectorSyntax(const char *literal) {
	ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
	                errmsg("invalid input syntax for type vector: \"%s\"", literal)));
	pg_unreachable();
}

// Overflow check of element-wise results (float_overflow_error: "value out of range: overflow").
inline void CheckNoOverflow(const VectorData *v) {
	for (int i = 0; i < v->dim; i++)
		if (std::isinf(v->x[i]))
			float_overflow_error();
}

// The aggregate state of avg(vector): float8[] {count, sum_1, ..., sum_dim}. Validates it before use.
const float8 *StateValues(ArrayType *state, const char *caller) {
	if (ARR_NDIM(state) != 1 || ARR_DIMS(state)[0] < 1 || ARR_HASNULL(state) || ARR_ELEMTYPE(state) != FLOAT8OID)
		elog(ERROR, "%s: expected state array", caller);
	return (const float8 *)ARR_DATA_PTR(state);
}

inline int StateDims(ArrayType *state) {
	return ARR_DIMS(state)[0] - 1;
}

ArrayType *MakeState(float8 count, const float8 *sums, int dim) {
	Datum *datums = (Datum *)palloc(sizeof(Datum) * ((Size)dim + 1));
	datums[0] = Float8GetDatum(count);
	for (int i = 0; i < dim; i++)
		datums[i + 1] = Float8GetDatum(sums[i]);
	ArrayType *result = construct_array(datums, dim + 1, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
	pfree(datums);
	return result;
}

// Sum of squares in double, as vector_norm and l2_normalize define the norm.
double SquaredNormDouble(const VectorData *v) {
	double sum = 0.0;
	for (int i = 0; i < v->dim; i++)
		sum += (double)v->x[i] * (double)v->x[i];
	return sum;
}

// Distances are the core's (src/core/distance.h), the same functions the index orders by: a vector's SQL
// distance and its index distance never disagree, not even on near-ties.
inline float L2SquaredOf(const VectorData *a, const VectorData *b) {
	return s5v::L2SquaredDistance(a->x, b->x, (size_t)a->dim);
}

inline float InnerProductOf(const VectorData *a, const VectorData *b) {
	return s5v::InnerProduct(a->x, b->x, (size_t)a->dim);
}

inline float L1Of(const VectorData *a, const VectorData *b) {
	return s5v::L1Distance(a->x, b->x, (size_t)a->dim);
}

} // namespace

int VectorCompare(const VectorData *a, const VectorData *b) {
	int common = Min(a->dim, b->dim);
	// Values before dimensions, like PostgreSQL arrays.
	for (int i = 0; i < common; i++) {
		if (a->x[i] < b->x[i])
			return -1;
		if (a->x[i] > b->x[i])
			return 1;
	}
	if (a->dim != b->dim)
		return a->dim < b->dim ? -1 : 1;
	return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Text and binary I/O, typmod

// '[1, 2.5, -3e4]': optional whitespace around brackets, elements and commas; elements parsed like float4in.
Datum vector_in(PG_FUNCTION_ARGS) {
	const char *literal = PG_GETARG_CSTRING(0);
	int32 typmod = PG_GETARG_INT32(2);

	const char *p = SkipSpaces(literal);
	if (*p != '[')
		ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
		                errmsg("invalid input syntax for type vector: \"%s\"", literal),
		                errdetail("Vector contents must start with \"[\".")));
	p = SkipSpaces(p + 1);
	if (*p == ']')
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("vector must have at least 1 dimension")));

	int capacity = 16;
	float *values = (float *)palloc(sizeof(float) * capacity);
	int dim = 0;
	for (;;) {
		if (dim == VECTOR_MAX_DIM)
			ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			                errmsg("vector cannot have more than %d dimensions", VECTOR_MAX_DIM)));
		p = SkipSpaces(p);
		if (*p == '\0')
			InvalidVectorSyntax(literal);

		// strtof (not strtod) like float4in: no double rounding. LC_NUMERIC is C in a backend.
		char *end;
		errno = 0;
		float value = strtof(p, &end);
		if (end == p)
			InvalidVectorSyntax(literal);
		if (errno == ERANGE && std::isinf(value))
			ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			                errmsg("\"%s\" is out of range for type vector", pnstrdup(p, end - p))));
		CheckElement(value);

		if (dim == capacity) {
			capacity = Min(capacity * 4, VECTOR_MAX_DIM);
			values = (float *)repalloc(values, sizeof(float) * capacity);
		}
		values[dim++] = value;

		p = SkipSpaces(end);
		if (*p == ',')
			p++;
		else if (*p == ']') {
			p++;
			break;
		} else
			InvalidVectorSyntax(literal);
	}

	p = SkipSpaces(p);
	if (*p != '\0')
		ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
		                errmsg("invalid input syntax for type vector: \"%s\"", literal),
		                errdetail("Junk after closing right brace.")));

	CheckDim(dim);
	CheckExpectedDim(typmod, dim);

	VectorData *result = InitVector(dim);
	memcpy(result->x, values, sizeof(float) * dim);
	pfree(values);
	PG_RETURN_VECTOR_P(result);
}

// '[x1,x2,...]' with each element in its shortest round-trip form (as float4out prints it).
Datum vector_out(PG_FUNCTION_ARGS) {
	VectorData *v = PG_GETARG_VECTOR_P(0);
	int dim = v->dim;
	// Each element takes at most FLOAT_SHORTEST_DECIMAL_LEN - 1 characters plus a comma; then '[', ']', '\0'.
	char *buf = (char *)palloc((Size)FLOAT_SHORTEST_DECIMAL_LEN * (Size)Max(dim, 0) + 3);
	char *p = buf;
	*p++ = '[';
	for (int i = 0; i < dim; i++) {
		if (i > 0)
			*p++ = ',';
		p += float_to_shortest_decimal_bufn(v->x[i], p);
	}
	*p++ = ']';
	*p = '\0';
	PG_FREE_IF_COPY(v, 0);
	PG_RETURN_CSTRING(buf);
}

// vector(n): exactly one integer modifier in 1..VECTOR_MAX_DIM.
Datum vector_typmod_in(PG_FUNCTION_ARGS) {
	ArrayType *modifiers = PG_GETARG_ARRAYTYPE_P(0);
	int count;
	int32 *values = ArrayGetIntegerTypmods(modifiers, &count);
	if (count != 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid type modifier")));
	if (values[0] < 1)
		ereport(ERROR,
		        (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("dimensions for type vector must be at least 1")));
	if (values[0] > VECTOR_MAX_DIM)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("dimensions for type vector cannot exceed %d", VECTOR_MAX_DIM)));
	PG_RETURN_INT32(values[0]);
}

// Binary form: int16 dim, int16 unused (0), dim big-endian float4.
Datum vector_recv(PG_FUNCTION_ARGS) {
	StringInfo buf = (StringInfo)PG_GETARG_POINTER(0);
	int32 typmod = PG_GETARG_INT32(2);

	int16 dim = (int16)pq_getmsgint(buf, sizeof(int16));
	int16 unused = (int16)pq_getmsgint(buf, sizeof(int16));
	CheckDim(dim);
	CheckExpectedDim(typmod, dim);
	if (unused != 0)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("expected unused to be 0, not %d", (int)unused)));

	VectorData *result = InitVector(dim);
	for (int i = 0; i < dim; i++) {
		result->x[i] = pq_getmsgfloat4(buf);
		CheckElement(result->x[i]);
	}
	PG_RETURN_VECTOR_P(result);
}

Datum vector_send(PG_FUNCTION_ARGS) {
	VectorData *v = PG_GETARG_VECTOR_P(0);
	StringInfoData buf;
	pq_begintypsend(&buf);
	pq_sendint16(&buf, (uint16)v->dim);
	pq_sendint16(&buf, (uint16)v->unused);
	for (int i = 0; i < v->dim; i++)
		pq_sendfloat4(&buf, v->x[i]);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

// ---------------------------------------------------------------------------------------------------------------
// Casts

// vector -> vector(n): the length coercion that enforces a typmod.
Datum vector(PG_FUNCTION_ARGS) {
	VectorData *v = PG_GETARG_VECTOR_P(0);
	int32 typmod = PG_GETARG_INT32(1);
	CheckExpectedDim(typmod, v->dim);
	PG_RETURN_VECTOR_P(v);
}

// integer[], real[], double precision[], numeric[] -> vector: one dimension, no NULLs, finite values.
Datum array_to_vector(PG_FUNCTION_ARGS) {
	ArrayType *array = PG_GETARG_ARRAYTYPE_P(0);
	int32 typmod = PG_GETARG_INT32(1);

	if (ARR_NDIM(array) > 1)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("array must be 1-D")));
	if (ARR_HASNULL(array) && array_contains_nulls(array))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("array must not contain nulls")));

	Oid elemtype = ARR_ELEMTYPE(array);
	int16 typlen;
	bool typbyval;
	char typalign;
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	Datum *elems;
	int count;
	deconstruct_array(array, elemtype, typlen, typbyval, typalign, &elems, NULL, &count);

	CheckDim(count);
	CheckExpectedDim(typmod, count);

	VectorData *result = InitVector(count);
	switch (elemtype) {
	case INT4OID:
		for (int i = 0; i < count; i++)
			result->x[i] = (float)DatumGetInt32(elems[i]);
		break;
	case FLOAT8OID:
		for (int i = 0; i < count; i++)
			result->x[i] = (float)DatumGetFloat8(elems[i]);
		break;
	case FLOAT4OID:
		for (int i = 0; i < count; i++)
			result->x[i] = DatumGetFloat4(elems[i]);
		break;
	case NUMERICOID:
		for (int i = 0; i < count; i++)
			result->x[i] = DatumGetFloat4(DirectFunctionCall1(numeric_float4, elems[i]));
		break;
	default:
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("unsupported array type")));
	}
	// Only the Datum array is ours: by-reference elements point into the input array.
	pfree(elems);

	for (int i = 0; i < count; i++)
		CheckElement(result->x[i]);
	PG_RETURN_VECTOR_P(result);
}

// vector -> real[]
Datum vector_to_float4(PG_FUNCTION_ARGS) {
	VectorData *v = PG_GETARG_VECTOR_P(0);
	Datum *datums = (Datum *)palloc(sizeof(Datum) * (Size)Max(v->dim, 1));
	for (int i = 0; i < v->dim; i++)
		datums[i] = Float4GetDatum(v->x[i]);
	ArrayType *result = construct_array(datums, v->dim, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT);
	pfree(datums);
	PG_RETURN_POINTER(result);
}

// ---------------------------------------------------------------------------------------------------------------
// Distances (float accumulation in the kernels, returned as float8, like pgvector)

Datum l2_distance(PG_FUNCTION_ARGS) {
	VectorData *a = PG_GETARG_VECTOR_P(0);
	VectorData *b = PG_GETARG_VECTOR_P(1);
	CheckDims(a, b);
	PG_RETURN_FLOAT8(std::sqrt((double)L2SquaredOf(a, b)));
}

// Squared L2 without the square root: the index support function for L2.
Datum vector_l2_squared_distance(PG_FUNCTION_ARGS) {
	VectorData *a = PG_GETARG_VECTOR_P(0);
	VectorData *b = PG_GETARG_VECTOR_P(1);
	CheckDims(a, b);
	PG_RETURN_FLOAT8((double)L2SquaredOf(a, b));
}

Datum inner_product(PG_FUNCTION_ARGS) {
	VectorData *a = PG_GETARG_VECTOR_P(0);
	VectorData *b = PG_GETARG_VECTOR_P(1);
	CheckDims(a, b);
	PG_RETURN_FLOAT8((double)InnerProductOf(a, b));
}

// The <#> operator: negated so that smaller means closer.
Datum vector_negative_inner_product(PG_FUNCTION_ARGS) {
	VectorData *a = PG_GETARG_VECTOR_P(0);
	VectorData *b = PG_GETARG_VECTOR_P(1);
	CheckDims(a, b);
	PG_RETURN_FLOAT8((double)-InnerProductOf(a, b));
}

// 1 - cos: float parts, similarity = dot / sqrt(|a|^2 * |b|^2) in double, clamped to [-1, 1]; NaN for zero norm.
Datum cosine_distance(PG_FUNCTION_ARGS) {
	VectorData *a = PG_GETARG_VECTOR_P(0);
	VectorData *b = PG_GETARG_VECTOR_P(1);
	CheckDims(a, b);
	PG_RETURN_FLOAT8(s5v::CosineDistance(a->x, b->x, (size_t)a->dim));
}

// Angular distance of unit vectors, in [0, 1]: for spherical k-means (satisfies the triangle inequality).
Datum vector_spherical_distance(PG_FUNCTION_ARGS) {
	VectorData *a = PG_GETARG_VECTOR_P(0);
	VectorData *b = PG_GETARG_VECTOR_P(1);
	CheckDims(a, b);
	double dot = (double)InnerProductOf(a, b);
	// Rounding can push a unit dot product just outside [-1, 1], where acos is NaN.
	if (dot > 1.0)
		dot = 1.0;
	else if (dot < -1.0)
		dot = -1.0;
	PG_RETURN_FLOAT8(std::acos(dot) / M_PI);
}

Datum l1_distance(PG_FUNCTION_ARGS) {
	VectorData *a = PG_GETARG_VECTOR_P(0);
	VectorData *b = PG_GETARG_VECTOR_P(1);
	CheckDims(a, b);
	PG_RETURN_FLOAT8((double)L1Of(a, b));
}

// ---------------------------------------------------------------------------------------------------------------
// Functions

Datum vector_dims(PG_FUNCTION_ARGS) {
	VectorData *v = PG_GETARG_VECTOR_P(0);
	PG_RETURN_INT32(v->dim);
}

// Euclidean norm, accumulated in double.
Datum vector_norm(PG_FUNCTION_ARGS) {
	VectorData *v = PG_GETARG_VECTOR_P(0);
	PG_RETURN_FLOAT8(std::sqrt(SquaredNormDouble(v)));
}

// v / |v|; the zero vector stays zero.
Datum l2_normalize(PG_FUNCTION_ARGS) {
	VectorData *v = PG_GETARG_VECTOR_P(0);
	VectorData *result = InitVector(v->dim);
	double norm = std::sqrt(SquaredNormDouble(v));
	if (norm > 0) {
		for (int i = 0; i < v->dim; i++)
			result->x[i] = (float)((double)v->x[i] / norm);
		CheckNoOverflow(result);
	}
	PG_RETURN_VECTOR_P(result);
}

// bit(dim): 1 where the element is > 0.
Datum binary_quantize(PG_FUNCTION_ARGS) {
	VectorData *v = PG_GETARG_VECTOR_P(0);
	Size size = VARBITTOTALLEN(v->dim);
	VarBit *result = (VarBit *)palloc0(size);
	SET_VARSIZE(result, size);
	VARBITLEN(result) = v->dim;
	bits8 *bits = VARBITS(result);
	for (int i = 0; i < v->dim; i++)
		if (v->x[i] > 0)
			bits[i / 8] |= (bits8)(0x80 >> (i % 8));
	PG_RETURN_VARBIT_P(result);
}

// Elements start..start+count-1 (1-based, clipped to the vector like substring); at least one must remain.
Datum subvector(PG_FUNCTION_ARGS) {
	VectorData *v = PG_GETARG_VECTOR_P(0);
	int32 start = PG_GETARG_INT32(1);
	int32 count = PG_GETARG_INT32(2);

	if (count < 1)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("vector must have at least 1 dimension")));
	// One past the last element; start + count is only computed when it cannot overflow (count >= 1).
	int32 end = (start > v->dim - count) ? v->dim + 1 : start + count;
	if (start < 1)
		start = 1;
	else if (start > v->dim)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("vector must have at least 1 dimension")));

	int dim = end - start;
	CheckDim(dim);
	VectorData *result = InitVector(dim);
	memcpy(result->x, v->x + (start - 1), sizeof(float) * dim);
	PG_RETURN_VECTOR_P(result);
}

// ---------------------------------------------------------------------------------------------------------------
// Element-wise arithmetic and concatenation

Datum vector_add(PG_FUNCTION_ARGS) {
	VectorData *a = PG_GETARG_VECTOR_P(0);
	VectorData *b = PG_GETARG_VECTOR_P(1);
	CheckDims(a, b);
	VectorData *result = InitVector(a->dim);
	for (int i = 0; i < a->dim; i++)
		result->x[i] = a->x[i] + b->x[i];
	CheckNoOverflow(result);
	PG_RETURN_VECTOR_P(result);
}

Datum vector_sub(PG_FUNCTION_ARGS) {
	VectorData *a = PG_GETARG_VECTOR_P(0);
	VectorData *b = PG_GETARG_VECTOR_P(1);
	CheckDims(a, b);
	VectorData *result = InitVector(a->dim);
	for (int i = 0; i < a->dim; i++)
		result->x[i] = a->x[i] - b->x[i];
	CheckNoOverflow(result);
	PG_RETURN_VECTOR_P(result);
}

// Element-wise product; a non-zero product that rounds to zero is an underflow error.
Datum vector_mul(PG_FUNCTION_ARGS) {
	VectorData *a = PG_GETARG_VECTOR_P(0);
	VectorData *b = PG_GETARG_VECTOR_P(1);
	CheckDims(a, b);
	VectorData *result = InitVector(a->dim);
	for (int i = 0; i < a->dim; i++)
		result->x[i] = a->x[i] * b->x[i];
	for (int i = 0; i < a->dim; i++) {
		if (std::isinf(result->x[i]))
			float_overflow_error();
		if (result->x[i] == 0 && !(a->x[i] == 0 || b->x[i] == 0))
			float_underflow_error();
	}
	PG_RETURN_VECTOR_P(result);
}

Datum vector_concat(PG_FUNCTION_ARGS) {
	VectorData *a = PG_GETARG_VECTOR_P(0);
	VectorData *b = PG_GETARG_VECTOR_P(1);
	int dim = a->dim + b->dim;
	CheckDim(dim);
	VectorData *result = InitVector(dim);
	memcpy(result->x, a->x, sizeof(float) * a->dim);
	memcpy(result->x + a->dim, b->x, sizeof(float) * b->dim);
	PG_RETURN_VECTOR_P(result);
}

// ---------------------------------------------------------------------------------------------------------------
// Comparisons (btree opclass vector_ops)

#define S5V_VECTOR_COMPARISON(name, op)                                                                                \
	Datum name(PG_FUNCTION_ARGS) {                                                                                     \
		VectorData *a = PG_GETARG_VECTOR_P(0);                                                                         \
		VectorData *b = PG_GETARG_VECTOR_P(1);                                                                         \
		PG_RETURN_BOOL(VectorCompare(a, b) op 0);                                                                      \
	}

S5V_VECTOR_COMPARISON(vector_lt, <)
S5V_VECTOR_COMPARISON(vector_le, <=)
S5V_VECTOR_COMPARISON(vector_eq, ==)
S5V_VECTOR_COMPARISON(vector_ne, !=)
S5V_VECTOR_COMPARISON(vector_ge, >=)
S5V_VECTOR_COMPARISON(vector_gt, >)

Datum vector_cmp(PG_FUNCTION_ARGS) {
	VectorData *a = PG_GETARG_VECTOR_P(0);
	VectorData *b = PG_GETARG_VECTOR_P(1);
	PG_RETURN_INT32(VectorCompare(a, b));
}

// ---------------------------------------------------------------------------------------------------------------
// avg(vector): state float8[] {n, sum_1..sum_dim}; '{0}' is the empty state. sum(vector) uses vector_add.

Datum vector_accum(PG_FUNCTION_ARGS) {
	ArrayType *state = PG_GETARG_ARRAYTYPE_P(0);
	VectorData *v = PG_GETARG_VECTOR_P(1);
	const float8 *values = StateValues(state, "vector_accum");
	int dim = StateDims(state);
	bool first = dim == 0;
	if (first)
		dim = v->dim;
	else
		CheckExpectedDim(dim, v->dim);

	float8 *sums = (float8 *)palloc(sizeof(float8) * (Size)Max(dim, 1));
	for (int i = 0; i < dim; i++) {
		if (first)
			sums[i] = (double)v->x[i];
		else {
			sums[i] = values[i + 1] + (double)v->x[i];
			if (std::isinf(sums[i]))
				float_overflow_error();
		}
	}
	ArrayType *result = MakeState(values[0] + 1.0, sums, dim);
	pfree(sums);
	PG_RETURN_ARRAYTYPE_P(result);
}

// Merges two partial states (parallel aggregation).
Datum vector_combine(PG_FUNCTION_ARGS) {
	ArrayType *state1 = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType *state2 = PG_GETARG_ARRAYTYPE_P(1);
	const float8 *values1 = StateValues(state1, "vector_combine");
	const float8 *values2 = StateValues(state2, "vector_combine");
	float8 n1 = values1[0];
	float8 n2 = values2[0];

	if (n1 == 0.0 || n2 == 0.0) {
		// One side is empty: the result is the other side.
		ArrayType *keep = n1 == 0.0 ? state2 : state1;
		const float8 *kept = n1 == 0.0 ? values2 : values1;
		int dim = StateDims(keep);
		// Two empty partial states (parallel workers that saw no rows) combine to the empty state. pgvector
		// 0.8 raises "vector must have at least 1 dimension" here at random; an empty partial is not an error.
		if (kept[0] == 0.0)
			PG_RETURN_ARRAYTYPE_P(MakeState(0.0, kept + 1, 0));
		CheckDim(dim);
		PG_RETURN_ARRAYTYPE_P(MakeState(kept[0], kept + 1, dim));
	}

	int dim = StateDims(state1);
	CheckDim(dim);
	CheckExpectedDim(dim, StateDims(state2));
	float8 *sums = (float8 *)palloc(sizeof(float8) * (Size)dim);
	for (int i = 0; i < dim; i++) {
		sums[i] = values1[i + 1] + values2[i + 1];
		if (std::isinf(sums[i]))
			float_overflow_error();
	}
	ArrayType *result = MakeState(n1 + n2, sums, dim);
	pfree(sums);
	PG_RETURN_ARRAYTYPE_P(result);
}

// Final function of avg(vector): NULL for no rows.
Datum vector_avg(PG_FUNCTION_ARGS) {
	ArrayType *state = PG_GETARG_ARRAYTYPE_P(0);
	const float8 *values = StateValues(state, "vector_avg");
	float8 n = values[0];
	if (n == 0.0)
		PG_RETURN_NULL();
	int dim = StateDims(state);
	CheckDim(dim);
	VectorData *result = InitVector(dim);
	for (int i = 0; i < dim; i++) {
		result->x[i] = (float)(values[i + 1] / n);
		CheckElement(result->x[i]);
	}
	PG_RETURN_VECTOR_P(result);
}
