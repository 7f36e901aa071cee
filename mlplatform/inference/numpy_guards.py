"""Guards for numpy's pickling helpers: dtype, array reconstruction, scalars, masked arrays.

Each guard validates the arguments or state *before* numpy allocates or copies anything, charges
the array bytes to the load's budget, and only then calls numpy. A dtype is accepted only if it
equals the dtype numpy itself builds from its validated description (no forged flags, offsets,
sizes), and it never carries Python objects inside a structured layout."""

from __future__ import annotations

import re

import numpy as np
import numpy.ma

from mlplatform.inference.limits import unsafe

MAX_NDIM = 32
MAX_ITEMSIZE = 1 << 20
DTYPE_CODE = re.compile(r"^[biufcUSVO]\d{1,7}$")  # what numpy's dtype.__reduce__ writes ('f8', 'V64')
SIMPLE_KINDS = set("biufcUSVO")


def element_count(shape, what: str) -> int:
    if type(shape) is not tuple or len(shape) > MAX_NDIM:
        raise unsafe(f"{what}: shape must be a tuple of at most {MAX_NDIM} integers")
    count = 1
    for dim in shape:
        if type(dim) is not int or dim < 0:
            raise unsafe(f"{what}: shape entries must be non-negative integers, got {type(dim).__name__}")
        count *= dim
    return count


def charge(budget, shape, dt: np.dtype, what: str) -> int:
    """Charge an array to the budget before it is built; returns its element count. Zero-size
    dtypes and zero-length axes are charged as if one byte / one entry long: an array of 2**40
    'V0' items or of shape (0, 2**62) costs nothing to build, yet code that loops over, sizes
    buffers by or iterates such an axis (len(classes_), tolist, np.zeros((n, len(x))))
    runs out of memory or time at predict."""
    count = element_count(shape, what)
    extent = 1
    for dim in shape:
        extent *= max(dim, 1)
    budget.charge_array(max(extent, count) * max(dt.itemsize, 1), what)
    return count


def _canonical(dt: np.dtype) -> np.dtype:
    if dt.names is None:
        return np.dtype(dt.str)
    spec = {"names": list(dt.names), "formats": [dt.fields[n][0] for n in dt.names],
            "offsets": [dt.fields[n][1] for n in dt.names], "itemsize": dt.itemsize}
    return np.dtype(spec, align=dt.isalignedstruct)


def check_dtype(dt, what: str, *, allow_object: bool = True) -> np.dtype:
    """A plain numeric/bool/str/bytes/object dtype or a structured dtype of such fields."""
    if not isinstance(dt, np.dtype) or type(dt).__module__ != "numpy.dtypes":
        raise unsafe(f"{what}: expected a numpy dtype, got {type(dt).__name__}")
    if dt.kind not in SIMPLE_KINDS or dt.subdtype is not None or dt.metadata is not None:
        raise unsafe(f"{what}: dtype {dt.str!r} is not supported")
    if not 0 <= dt.itemsize <= MAX_ITEMSIZE:
        raise unsafe(f"{what}: dtype item size {dt.itemsize} is out of range")
    if dt.hasobject and not (allow_object and dt.kind == "O" and dt.names is None):
        raise unsafe(f"{what}: dtype {dt!r} holds Python objects where plain data is expected")
    for name in dt.names or ():
        field = dt.fields[name]
        if len(field) != 2 or field[0].names is not None:
            raise unsafe(f"{what}: structured dtype field {name!r} is not a plain field")
        check_dtype(field[0], what, allow_object=False)
    try:
        canonical = _canonical(dt)
    except (TypeError, ValueError) as exc:
        raise unsafe(f"{what}: inconsistent dtype ({exc})") from None
    if canonical != dt or canonical.flags != dt.flags or canonical.itemsize != dt.itemsize \
            or canonical.alignment != dt.alignment:
        raise unsafe(f"{what}: dtype state does not match the dtype numpy builds from it")
    return dt


def _dtype_arg(arg, what: str) -> np.dtype:
    """The dtype argument of numpy's reconstruct helpers: a validated dtype or the 'b' placeholder."""
    if type(arg) in (bytes, str) and arg in (b"b", "b"):
        return np.dtype("b")
    return check_dtype(arg, what)


def dtype_call(ctx, entry, func, args):
    # copy must be True: dtype('f8', False, False) is numpy's shared float64 singleton, which a
    # following BUILD would then rewrite for the whole process
    if len(args) != 3 or type(args[0]) is not str or not DTYPE_CODE.match(args[0]) \
            or args[1] is not False or args[2] is not True:
        raise unsafe(f"numpy.dtype called with unexpected arguments {_shape_of(args)}")
    return func(*args)


def dtype_build(ctx, inst, state):
    """dtype.__setstate__: (3, byteorder, subarray, names, fields, elsize, alignment, flags)."""
    if type(state) is not tuple or len(state) != 8 or type(state[0]) is not int or state[0] != 3:
        raise unsafe("numpy dtype state has an unexpected layout")
    _, order, subarray, names, fields, elsize, alignment, flags = state
    if type(order) is not str or order not in ("<", ">", "|", "=") or subarray is not None:
        raise unsafe("numpy dtype state: unsupported byte order or sub-array")
    if not all(type(v) is int for v in (elsize, alignment, flags)) or not -1 <= elsize <= MAX_ITEMSIZE:
        raise unsafe("numpy dtype state: sizes must be small integers")
    if names is not None:
        if type(names) is not tuple or type(fields) is not dict or set(names) != set(fields) \
                or not all(type(n) is str for n in names):
            raise unsafe("numpy dtype state: field names and fields disagree")
        for value in fields.values():
            if type(value) is not tuple or len(value) != 2 or type(value[1]) is not int:
                raise unsafe("numpy dtype state: malformed field")
            field_dtype = check_dtype(value[0], "numpy dtype field", allow_object=False)
            if value[1] < 0 or value[1] + field_dtype.itemsize > elsize:
                raise unsafe("numpy dtype state: field lies outside the item")
    elif fields is not None:
        raise unsafe("numpy dtype state: fields without names")
    np.dtype.__setstate__(inst, state)
    check_dtype(inst, "numpy dtype")


def reconstruct_call(ctx, entry, func, args):
    """numpy._core.multiarray._reconstruct(ndarray, shape, 'b'): an empty array that BUILD fills."""
    if len(args) != 3 or args[0] is not np.ndarray:
        raise unsafe("_reconstruct may only build plain numpy.ndarray objects")
    dt = _dtype_arg(args[2], "_reconstruct")
    charge(ctx.budget, args[1], dt, "_reconstruct")
    array = func(*args)
    ctx.expect_build(array)
    return array


def frombuffer_call(ctx, entry, func, args):
    """numpy._core.numeric._frombuffer(buffer, dtype, shape, order): protocol-5 array pickles."""
    if len(args) != 4 or type(args[0]) not in (bytes, bytearray) or type(args[3]) is not str \
            or args[3] not in ("C", "F"):
        raise unsafe("_frombuffer called with unexpected arguments")
    dt = check_dtype(args[1], "_frombuffer", allow_object=False)
    nbytes = element_count(args[2], "_frombuffer") * dt.itemsize
    if nbytes != len(args[0]):
        raise unsafe(f"_frombuffer: buffer holds {len(args[0])} bytes, shape and dtype need {nbytes}")
    charge(ctx.budget, args[2], dt, "_frombuffer")
    return func(*args)


def scalar_call(ctx, entry, func, args):
    """numpy._core.multiarray.scalar(dtype, raw bytes): one numpy scalar."""
    if len(args) != 2 or type(args[1]) is not bytes:
        raise unsafe("numpy scalar called with unexpected arguments")
    dt = check_dtype(args[0], "numpy scalar", allow_object=False)
    if len(args[1]) != dt.itemsize:
        raise unsafe("numpy scalar: byte length does not match its dtype")
    return func(*args)


def mareconstruct_call(ctx, entry, func, args):
    """numpy.ma.core._mareconstruct(MaskedArray, ndarray, shape, 'b') (search objects' cv_results_)."""
    if len(args) != 4 or args[0] is not numpy.ma.MaskedArray or args[1] is not np.ndarray:
        raise unsafe("_mareconstruct may only build numpy.ma.MaskedArray over numpy.ndarray")
    dt = _dtype_arg(args[3], "_mareconstruct")
    charge(ctx.budget, args[2], np.dtype(f"V{dt.itemsize + 1}"), "_mareconstruct")  # data + mask
    array = func(*args)
    ctx.expect_build(array)
    return array


def _array_payload(ctx, shape, dt, payload, what: str) -> int:
    """Check an array's raw payload (bytes, or a list of elements for object dtype)."""
    count = charge(ctx.budget, shape, dt, what)
    if dt.hasobject:
        if type(payload) is not list or len(payload) != count:
            raise unsafe(f"{what}: object array payload must be a list of {count} elements")
        for element in payload:
            ctx.check_element(element, what)
    elif type(payload) not in (bytes, bytearray) or len(payload) != count * dt.itemsize:
        raise unsafe(f"{what}: raw data does not match shape and dtype")
    return count


def ndarray_build(ctx, inst, state):
    """ndarray.__setstate__((version, shape, dtype, is_fortran, data))."""
    if type(state) is not tuple or len(state) != 5 or type(state[0]) is not int or state[0] != 1 \
            or type(state[3]) is not bool:
        raise unsafe("numpy array state has an unexpected layout")
    ctx.take_unbuilt(inst, "numpy array")
    dt = check_dtype(state[2], "numpy array")
    _array_payload(ctx, state[1], dt, state[4], "numpy array")
    np.ndarray.__setstate__(inst, state)


def masked_build(ctx, inst, state):
    """MaskedArray.__setstate__((version, shape, dtype, is_fortran, data, mask, fill_value))."""
    if type(state) is not tuple or len(state) != 7 or type(state[3]) is not bool:
        raise unsafe("masked array state has an unexpected layout")
    ctx.take_unbuilt(inst, "masked array")
    _, shape, dt, _isf, raw, mask, fill = state
    dt = check_dtype(dt, "masked array")
    if dt.names is not None:
        raise unsafe("masked arrays of structured dtypes are not supported")
    count = _array_payload(ctx, shape, dt, raw, "masked array")
    if type(mask) not in (bytes, bytearray) or len(mask) != count:
        raise unsafe("masked array: mask does not match the data")
    ctx.check_element(fill, "masked array fill value")
    numpy.ma.MaskedArray.__setstate__(inst, state)


def _shape_of(args) -> str:
    return "(" + ", ".join(type(a).__name__ for a in args) + ")"
