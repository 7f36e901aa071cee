"""Rules for values inside a model that the unpickler (at BUILD time) and the post-load walk both
apply: what an object-array element may be, which instance attributes a state may set, and how
to name an object in a reason without calling its repr."""

from __future__ import annotations

import types

import numpy as np

from mlplatform.inference.limits import unsafe

PLAIN_TYPES = (type(None), bool, int, float, str)
# numpy 2 wraps its Python-level functions (np.mean, np.sum...) in _ArrayFunctionDispatcher
# objects: neither FunctionType nor builtin, yet callable (describe() names them, the walk
# refuses any that is not allowlisted, as_value placement applies to them)
CALLABLE_TYPES = (type, types.FunctionType, types.BuiltinFunctionType, np.ufunc, types.MethodType,
                  types.BuiltinMethodType, type(np.mean))


def describe(obj) -> str:
    """A name for reasons: module.qualname of a class or function, else of the object's type."""
    if isinstance(obj, CALLABLE_TYPES):
        module = getattr(obj, "__module__", None) or "?"
        return f"{module}.{getattr(obj, '__qualname__', None) or getattr(obj, '__name__', '?')}"
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__} object"


def is_numpy_scalar(value) -> bool:
    return isinstance(value, np.generic) and type(value).__module__ == "numpy" and type(value) is not np.object_


def check_element(value, allowlist, what: str) -> None:
    """Object-array elements: str/int/float/bool/None, numpy scalars, allowlisted class instances."""
    cls = type(value)
    if cls in PLAIN_TYPES or is_numpy_scalar(value):
        return
    if allowlist.is_instance_type(cls) and allowlist.check_of_type(cls) != "array_wrapper":
        return
    raise unsafe(f"{what} of type {describe(cls)} is not allowed")


def shadows(cls: type, key: str) -> bool:
    """Would an instance attribute `key` hide a method, property or other descriptor of cls?"""
    for klass in cls.__mro__:
        if key in klass.__dict__:
            return hasattr(type(klass.__dict__[key]), "__get__")  # methods, properties, descriptors
    return False


def check_attribute_name(cls: type, key, where: str) -> None:
    if type(key) is not str:
        raise unsafe(f"{where}: attribute names must be strings, got {describe(type(key))}")
    if key.startswith("__") and key.endswith("__"):
        raise unsafe(f"{where}: state may not set the special attribute {key!r}")
    if shadows(cls, key):
        raise unsafe(f"{where}: attribute {key!r} would shadow {describe(cls)}.{key}")


def check_state_dict(cls: type, state) -> None:
    if type(state) is not dict:
        raise unsafe(f"state of {describe(cls)} must be a dict, got {describe(type(state))}")
    for key in state:
        check_attribute_name(cls, key, describe(cls))
