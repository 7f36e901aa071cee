"""SafeUnpickler: joblib's NumpyUnpickler (pure-Python pickle underneath) with every opcode that
can reach code replaced.

- Opcodes: a whitelist of the binary protocol 4/5 opcodes; the stream must start with PROTO 4 or 5.
  INST/OBJ/GLOBAL, extension codes, persistent ids, out-of-band buffers and protocol 0/1 text
  opcodes are refused.
- find_class: exact (module, name) pairs from the reviewed allowlist, resolved at start-up. No
  import, no dotted names, no fallback.
- REDUCE/NEWOBJ: only allowlisted objects (by identity), only through the opcodes the review
  recorded for them, through their guard if they have one.
- BUILD: only on instances of allowlisted types; plain state keys (no dunders, nothing that
  shadows a method or property); classes with C-level __setstate__ only through a guard.
- Sizes: declared lengths and array sizes are checked against the budget before allocation.
- joblib arrays: the wrapper's state is validated and a fresh wrapper reads the bytes; object
  arrays' nested streams are read by a nested SafeUnpickler (joblib's own nested reader only
  inherits find_class), and every element is re-checked."""

from __future__ import annotations

import pickle
from struct import unpack

import numpy as np
from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

from mlplatform.inference import numpy_guards as ng
from mlplatform.inference.guards import CALL_GUARDS, build_guard
from mlplatform.inference.limits import Rejected, over_limit, unsafe
from mlplatform.inference.state import check_element, check_state_dict, describe

MAX_LONG_BYTES = 4096
MAX_GLOBAL_CHARS = 200  # longer than every allowlisted module/name; reasons quote the name
MAX_VERSION_CHARS = 64
WRAPPER_KEYS = {"subclass", "shape", "order", "dtype", "allow_mmap", "numpy_array_alignment_bytes"}
ALLOWED_OPCODES = {
    "FRAME", "STOP", "MARK", "POP", "POP_MARK", "DUP", "NONE", "NEWTRUE", "NEWFALSE", "BININT",
    "BININT1", "BININT2", "LONG1", "BINFLOAT", "SHORT_BINUNICODE", "SHORT_BINBYTES",
    "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET",
    "STACK_GLOBAL", "MEMOIZE", "BINGET", "LONG_BINGET", "BINPUT", "LONG_BINPUT",
}  # plus the ones SafeUnpickler overrides below
OPCODE_NAMES = {op.code.encode("latin-1")[0]: op.name for op in __import__("pickletools").opcodes}
PLAIN_ARGS = (type(None), bool, int, float, str)
ORDERS = {"C", "F"}  # a set: membership hashes, so no attacker-chosen __eq__ runs


class SafeUnpickler(NumpyUnpickler):
    dispatch: dict = {}

    def __init__(self, reader, budget, allowlist, *, nested: bool = False):
        NumpyUnpickler.__init__(self, "", reader, ensure_native_byte_order=True, mmap_mode=None)
        self.reader, self.budget, self.allowlist, self.nested = reader, budget, allowlist, nested
        self._built: dict[int, object] = {}  # BUILD at most once per object (pins it, so ids stay unique)
        self._unbuilt_arrays: dict[int, object] = {}  # from _reconstruct, waiting for their one BUILD

    # -- the loop: first opcode must be PROTO 4/5, every opcode counted, unknown opcodes refused
    def load(self):
        self._unframer = pickle._Unframer(self._file_read, self._file_readline)
        self.read, self.readinto, self.readline = (
            self._unframer.read, self._unframer.readinto, self._unframer.readline)
        self.metastack, self.stack = [], []
        self.append = self.stack.append
        head = self.read(2)
        if len(head) != 2 or head[0] != pickle.PROTO[0] or head[1] not in (4, 5):
            raise Rejected("unsupported_format", _head_reason(head))
        self.proto = head[1]
        dispatch, read, budget, max_ops = self.dispatch, self.read, self.budget, self.budget.limits.max_pickle_ops
        try:
            while True:
                key = read(1)
                if not key:
                    raise EOFError("pickle stream ended before STOP")
                budget.ops += 1
                if budget.ops > max_ops:
                    raise over_limit(f"pickle stream exceeds {max_ops} opcodes")
                handler = dispatch.get(key[0])
                if handler is None:
                    raise unsafe(f"forbidden pickle opcode {OPCODE_NAMES.get(key[0], hex(key[0]))}")
                handler(self)
        except pickle._Stop as stop:
            return stop.value

    def load_proto(self):
        if self.read(1)[0] != self.proto:
            raise unsafe("PROTO opcode changes the protocol in the middle of the stream")

    # -- globals
    def find_class(self, module, name):
        if type(module) is not str or type(name) is not str:
            raise unsafe("global names must be strings")
        if len(module) > MAX_GLOBAL_CHARS or len(name) > MAX_GLOBAL_CHARS:
            raise unsafe(f"global name of {len(module)} + {len(name)} characters is not on the allowlist "
                         f"(longer than any reviewed name): {module[:60]!r}.{name[:60]!r}")
        if "." in name:
            raise unsafe(f"dotted global name '{module}.{name}' is not allowed (it walks attributes)")
        obj = self.allowlist.lookup(module, name)
        if obj is None:
            raise self.allowlist.refusal(module, name)
        return obj

    # -- calls
    def _call(self, func, args, opcode):
        entry = self.allowlist.entry_of(func)
        if entry is None:
            raise unsafe(f"{opcode} may only call allowlisted globals, not {describe(func)}")
        if opcode not in entry.calls:
            raise unsafe(f"'{entry.qualified}' may not be called by {opcode} (reviewed as a value only)")
        if type(args) is not tuple:
            raise unsafe(f"{opcode} arguments must be a tuple")
        guard = CALL_GUARDS.get(entry.check)
        if guard is not None:
            return guard(self, entry, func, args)
        if opcode == "REDUCE":
            if not all(isinstance(a, PLAIN_ARGS) for a in args):
                raise unsafe(f"'{entry.qualified}' may only be called with plain values")
            return func(*args)
        if args and not (isinstance(func, type) and issubclass(func, tuple)):  # namedtuples take fields
            raise unsafe(f"'{entry.qualified}' may only be created without arguments")
        return func.__new__(func, *args)

    def load_reduce(self):
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args, "REDUCE")

    def load_newobj(self):
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args, "NEWOBJ")

    def load_newobj_ex(self):
        kwargs = self.stack.pop()
        args = self.stack.pop()
        if type(kwargs) is not dict or kwargs:
            raise unsafe("NEWOBJ_EX with keyword arguments is not supported")
        self.stack[-1] = self._call(self.stack[-1], args, "NEWOBJ_EX")

    # -- BUILD
    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        cls = type(inst)
        if not (isinstance(inst, np.dtype) or self.allowlist.is_instance_type(cls)):
            raise unsafe(f"BUILD on an object of type {describe(cls)} is not allowed")
        if id(inst) in self._built:  # a second BUILD would rewrite state already checked and shared
            raise unsafe(f"BUILD applied twice to the same {describe(cls)}")  # (e.g. an array a tree reads)
        self._built[id(inst)] = inst
        if cls is NumpyArrayWrapper:
            self.stack[-1] = self._read_wrapped_array(state)
            return
        guard = build_guard(self.allowlist, inst)
        if guard is not None:
            guard(self, inst, state)
            return
        setstate = getattr(cls, "__setstate__", None)
        check_state_dict(cls, state)
        version = state.get("_sklearn_version", "")
        if type(version) is not str or len(version) > MAX_VERSION_CHARS:
            # BaseEstimator.__setstate__ compares it and formats it into InconsistentVersionWarning:
            # anything but a short str would run repr()/__eq__ of a half-built object mid-load
            raise unsafe(f"{describe(cls)}._sklearn_version must be a short version string")
        if setstate is None:
            inst.__dict__.update(state)
        elif type(setstate).__name__ == "function":  # a reviewed class's Python-level __setstate__
            setstate(inst, state)
        else:
            raise unsafe(f"{describe(cls)} has a compiled __setstate__ and no reviewed guard")

    def _read_wrapped_array(self, state):
        """joblib's NumpyArrayWrapper: validate, charge, then read through a fresh wrapper."""
        if self.nested:
            raise unsafe("joblib array wrapper inside an object array stream")
        if type(state) is not dict or not {"subclass", "shape", "order", "dtype"} <= set(state) <= WRAPPER_KEYS:
            raise unsafe("joblib array wrapper state has an unexpected layout")
        if state["subclass"] is not np.ndarray:
            raise unsafe(f"joblib array of type {describe(state['subclass'])} is not supported")
        if type(state["order"]) is not str or state["order"] not in ORDERS:
            raise unsafe("joblib array order must be 'C' or 'F'")
        alignment = state.get("numpy_array_alignment_bytes")
        if not (alignment is None or (type(alignment) is int and alignment == 16)) \
                or type(state.get("allow_mmap", False)) is not bool:
            raise unsafe("joblib array wrapper alignment/mmap flags are unexpected")
        dtype = ng.check_dtype(state["dtype"], "joblib array")
        ng.charge(self.budget, state["shape"], dtype, "joblib array")
        if dtype.hasobject:
            return self._nested_object_array(state["shape"])
        wrapper = NumpyArrayWrapper(np.ndarray, state["shape"], state["order"], dtype,
                                    allow_mmap=False, numpy_array_alignment_bytes=alignment)
        return wrapper.read_array(self, ensure_native_byte_order=True)

    def _nested_object_array(self, shape):
        array = SafeUnpickler(self.reader, self.budget, self.allowlist, nested=True).load()
        if type(array) is not np.ndarray or array.dtype != object or array.shape != shape:
            raise unsafe("joblib object array stream did not hold the declared object array")
        for element in array.flat:  # already checked at BUILD; re-checked whatever path built it
            self.check_element(element, "object array element")
        return array

    def check_element(self, value, what: str) -> None:
        check_element(value, self.allowlist, what)

    # -- array life cycle: numpy's __setstate__ frees an array's buffer even while C code (a KD
    # tree's memoryview) still points into it, so an array gets its state once, before any use.
    def expect_build(self, array) -> None:
        self._unbuilt_arrays[id(array)] = array

    def take_unbuilt(self, array, what: str) -> None:
        if self._unbuilt_arrays.pop(id(array), None) is not array:
            raise unsafe(f"{what}: state may only be set once, on an array fresh from its reconstruct helper")

    def require_built(self, *arrays) -> None:
        for array in arrays:
            if id(array) in self._unbuilt_arrays:
                raise unsafe("an array was used before its state was set")

    # -- containers: only real lists/dicts/sets (or allowlisted subclasses), plain hashable keys
    def _container(self, obj, base):
        if type(obj) is base or (isinstance(obj, base) and self.allowlist.is_class(type(obj))):
            return obj
        raise unsafe(f"cannot add items to an object of type {describe(type(obj))}")

    def load_append(self):
        value = self.stack.pop()
        list.append(self._container(self.stack[-1], list), value)

    def load_appends(self):
        items = self.pop_mark()
        list.extend(self._container(self.stack[-1], list), items)

    def load_setitem(self):
        value, key = self.stack.pop(), self.stack.pop()
        dict.__setitem__(self._container(self.stack[-1], dict), _key(key), value)

    def load_setitems(self):
        items = self.pop_mark()
        target = self._container(self.stack[-1], dict)
        if len(items) % 2:
            raise pickle.UnpicklingError("SETITEMS with an odd number of items")
        for i in range(0, len(items), 2):
            dict.__setitem__(target, _key(items[i]), items[i + 1])

    def load_additems(self):
        items = self.pop_mark()
        set.update(self._container(self.stack[-1], set), [_key(i) for i in items])

    def load_frozenset(self):
        items = self.pop_mark()  # pop first: self.append is the enclosing stack's only after it
        self.append(frozenset(_key(i) for i in items))

    # -- declared lengths: checked against what the stream can still hold, before reading
    def _length(self, fmt: str, size: int, what: str) -> int:
        (n,) = unpack(fmt, self.read(size))
        frame = self._unframer.current_frame
        left = self.reader.remaining + (len(frame.getbuffer()) - frame.tell() if frame else 0)
        if n < 0 or n > left:
            raise over_limit(f"{what} declares {n} bytes, more than the {left} left under the decompressed size limit")
        return n

    def _exact(self, n: int) -> bytes:
        data = self.read(n)
        if len(data) != n:
            raise pickle.UnpicklingError("pickle data was truncated")
        return data

    def load_binbytes(self):
        self.append(self._exact(self._length("<I", 4, "BINBYTES")))

    def load_binbytes8(self):
        self.append(self._exact(self._length("<Q", 8, "BINBYTES8")))

    def load_bytearray8(self):
        self.append(bytearray(self._exact(self._length("<Q", 8, "BYTEARRAY8"))))

    def load_binunicode(self):
        self.append(str(self._exact(self._length("<I", 4, "BINUNICODE")), "utf-8", "surrogatepass"))

    def load_binunicode8(self):
        self.append(str(self._exact(self._length("<Q", 8, "BINUNICODE8")), "utf-8", "surrogatepass"))

    def load_long4(self):
        n = self._length("<i", 4, "LONG4")
        if n > MAX_LONG_BYTES:
            raise over_limit(f"LONG4 integer of {n} bytes exceeds {MAX_LONG_BYTES}")
        self.append(pickle.decode_long(self._exact(n)))


def _key(key):
    """Dict keys and set items: plain hashable values only (no user-defined __hash__/__eq__)."""
    if type(key) is tuple:
        for item in key:
            _key(item)
    elif not (isinstance(key, (str, int, float, bytes, type(None))) and type(key).__module__ == "builtins") \
            and not isinstance(key, np.generic):
        raise unsafe(f"dictionary key of type {describe(type(key))} is not allowed")
    return key


def _head_reason(head: bytes) -> str:
    if len(head) == 2 and head[0] == pickle.PROTO[0]:
        return f"pickle protocol {head[1]} is not supported (save with protocol 4 or 5)"
    return "not a pickle protocol 4 or 5 stream (protocols 0-3 and other formats are not supported)"


def _build_dispatch() -> dict:
    table = {}
    for code, handler in pickle._Unpickler.dispatch.items():
        if OPCODE_NAMES[code] in ALLOWED_OPCODES:
            table[code] = handler
    overrides = {
        "PROTO": "load_proto", "REDUCE": "load_reduce", "NEWOBJ": "load_newobj",
        "NEWOBJ_EX": "load_newobj_ex", "BUILD": "load_build", "APPEND": "load_append",
        "APPENDS": "load_appends", "SETITEM": "load_setitem", "SETITEMS": "load_setitems",
        "ADDITEMS": "load_additems", "FROZENSET": "load_frozenset", "BINBYTES": "load_binbytes",
        "BINBYTES8": "load_binbytes8", "BYTEARRAY8": "load_bytearray8", "BINUNICODE": "load_binunicode",
        "BINUNICODE8": "load_binunicode8", "LONG4": "load_long4",
    }
    for opcode, method in overrides.items():
        table[getattr(pickle, opcode)[0]] = getattr(SafeUnpickler, method)
    return table


SafeUnpickler.dispatch = _build_dispatch()
