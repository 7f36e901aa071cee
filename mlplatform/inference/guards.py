"""Which guard runs for which allowlisted entry (by its reviewed `check` name) and for which
instance type a BUILD opcode targets. Entries with a check name not listed here get structural
checks after load (checks.py) or need none."""

from __future__ import annotations

import numpy as np

from mlplatform.inference import numpy_guards as ng
from mlplatform.inference import object_guards as og

# check name -> guard(ctx, entry, func, args) that validates and then performs the call
CALL_GUARDS = {
    "numpy_dtype": ng.dtype_call,
    "numpy_reconstruct": ng.reconstruct_call,
    "numpy_frombuffer": ng.frombuffer_call,
    "numpy_scalar": ng.scalar_call,
    "masked_reconstruct": ng.mareconstruct_call,
    "partial": og.partial_call,
    "random_ctor": og.random_ctor_call,
    "cython_unpickle": og.type_argument_call,
    "new_obj": og.type_argument_call,
    "sklearn_tree": og.tree_call,
}

# check name -> guard(ctx, instance, state) that validates the state and then applies it
BUILD_GUARDS = {
    "ndarray": ng.ndarray_build,
    "masked_array": ng.masked_build,
    "partial": og.partial_build,
    "bit_generator": og.bit_generator_build,
    "random_state": og.random_state_build,
    "seed_sequence": og.seed_sequence_build,
    "sklearn_tree": og.tree_build,
    "binary_tree": og.binary_tree_build,
    "dist_metric": og.dist_metric_build,
}

# instance types no pickle names directly but allowlisted helpers return (module, name, check)
PRODUCED_TYPES = (
    ("numpy.random.mtrand", "RandomState", "random_state"),  # from __randomstate_ctor
    ("numpy.random._generator", "Generator", "generator"),  # from __generator_ctor; never BUILD
)

# Types that reviewed __setstate__ code derives from already-checked state (never in a pickle:
# no global names them and BUILD refuses them). The walk treats them as leaves.
DERIVED_TYPES = (
    ("scipy.interpolate._interpolate", "interp1d"),  # IsotonicRegression.__setstate__ builds f_
)

KNOWN_CHECKS = set(CALL_GUARDS) | set(BUILD_GUARDS) | {
    "array_wrapper", "bit_generator", "hgb", "hgb_predictor", "libsvm", "cluster_centers",
    "sparse", "bspline", "random_state", "generator"}


def build_guard(allowlist, inst):
    """The BUILD guard for this instance, or None for plain dict-state objects."""
    if isinstance(inst, np.dtype):
        return ng.dtype_build
    check = allowlist.check_of_type(type(inst))
    return BUILD_GUARDS.get(check) if check else None
