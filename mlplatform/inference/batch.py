"""Batch: the plain-data input of a prediction (named 1-D columns). It crosses the model-host
boundary (protocol.py encodes it), so it holds only numeric/bool arrays and str/None columns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TEXT_COLUMN = "text"


def _column(values) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError("batch columns must be one-dimensional")
    if array.dtype.kind in "biuf":
        return array
    if array.dtype.kind in "US":
        return array.astype(object)
    if array.dtype.kind == "O":
        for value in array:
            if value is not None and type(value) is not str:
                if isinstance(value, float) and value != value:  # NaN stands for a missing string
                    continue
                raise ValueError(f"string columns may hold only str or None, not {type(value).__name__}")
        return np.array([None if v is not None and type(v) is not str else v for v in array], dtype=object)
    raise ValueError(f"unsupported column dtype {array.dtype}")


@dataclass
class Batch:
    columns: list[str]
    values: list[np.ndarray]
    # all-float64 input held as one (rows, columns) C-order array, `values` being views of its
    # columns: it crosses to the model host as one buffer and is the model's 2-D input as it is
    block: np.ndarray | None = field(default=None, repr=False, compare=False)
    # name -> position: wide batches (100k+ columns) are looked up by name once per column
    _index: dict[str, int] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self):
        self.columns = [str(c) for c in self.columns]
        if self.block is None:
            self.values = [_column(v) for v in self.values]
        self._index = {c: i for i, c in enumerate(self.columns)}
        if len(self.columns) != len(self.values) or len(self._index) != len(self.columns):
            raise ValueError("a batch needs one array per distinct column name")
        if len({len(v) for v in self.values}) > 1:
            raise ValueError("batch columns must have equal lengths")

    @classmethod
    def from_block(cls, columns: list[str], block) -> "Batch":
        block = np.ascontiguousarray(block, dtype=np.float64)
        if block.ndim != 2 or block.shape[1] != len(columns):
            raise ValueError("a block needs one column per name")
        return cls(columns, list(block.T), block=block)

    @classmethod
    def from_input(cls, X) -> "Batch":
        """numpy 2-D -> columns f0..fN; DataFrame -> its columns; 1-D str list/array -> 'text'."""
        if hasattr(X, "columns") and hasattr(X, "iloc"):  # a pandas DataFrame
            return cls([str(c) for c in X.columns], [_frame_column(X[c]) for c in X.columns])
        if hasattr(X, "toarray"):  # a scipy sparse matrix
            X = X.toarray()
        if isinstance(X, (list, tuple)) and X and all(isinstance(x, str) for x in X):
            return cls([TEXT_COLUMN], [np.array(list(X), dtype=object)])
        array = np.asarray(X)
        if array.ndim == 1 and array.dtype.kind in "UO":
            return cls([TEXT_COLUMN], [array.astype(object)])
        if array.ndim != 2:
            raise ValueError("expected a 2-D array, a DataFrame or a list of texts")
        columns = np.array(array, order="F").T  # one copy; its rows are the input's columns, contiguous
        return cls([f"f{i}" for i in range(array.shape[1])], list(columns))

    @property
    def n_rows(self) -> int:
        return len(self.values[0]) if self.values else 0

    def has(self, name: str) -> bool:
        return name in self._index

    def column(self, name: str) -> np.ndarray:
        return self.values[self._index[name]]


def _frame_column(series) -> np.ndarray:
    kind = getattr(series.dtype, "kind", "O")
    if kind in "biuf":
        return series.to_numpy()
    values = series.astype(object).to_numpy()
    return np.array([None if not isinstance(v, str) else v for v in values], dtype=object)
