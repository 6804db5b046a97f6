/*
 * arrays.c: bigint[] arguments and values, built and read in one place.
 *
 * int8 is passed by value exactly when float8 is (FLOAT8PASSBYVAL): every
 * bigint[] goes through here so no caller can get that wrong.
 */
#include "chat.h"

#include "catalog/pg_type.h"
#include "utils/array.h"

/* A one-dimensional bigint[] of n Datums. */
ArrayType *
ChatInt8Array(Datum *elems, int n)
{
	return construct_array(elems, n, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/* The elements of a bigint[]; a null element is refused (22023) naming it. */
int
ChatInt8ArrayValues(ArrayType *arr, const char *name, int64 **out)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;

	deconstruct_array(arr, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, &n);
	*out = palloc(sizeof(int64) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not contain null", name)));
		(*out)[i] = DatumGetInt64(elems[i]);
	}
	pfree(elems);
	pfree(nulls);
	return n;
}

/*
 * A bigint[] argument (NULL: no element): one dimension, at most max
 * elements (too_many, when given, is the refusal's format with max and the
 * count; else "<name> has N elements, the limit is max"), no null element.
 * Returns the count and, when out is given, the elements.
 */
int
ChatInt8ArrayArg(FunctionCallInfo fcinfo, int argno, const char *name, int max,
				 const char *too_many, int64 **out)
{
	ArrayType  *arr;
	int			n;

	if (out)
		*out = NULL;
	if (PG_ARGISNULL(argno))
		return 0;
	arr = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a one-dimensional array", name)));
	n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	if (n > max && too_many != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg_internal(too_many, max, n)));
	if (n > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s has %d elements, the limit is %d", name, n, max)));
	if (out)
		return ChatInt8ArrayValues(arr, name, out);
	if (array_contains_nulls(arr))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not contain null", name)));
	return n;
}
