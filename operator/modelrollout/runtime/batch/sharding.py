"""Which shard of an Indexed Job owns a row: a stable 64-bit hash of its key, vectorised.

Every shard reads the whole input and keeps the rows whose ``hash(key) % shard_count`` is its
index, so shards need no coordination and a retried shard selects exactly the rows it had. The
hash must be the same in every process and every release, so it is plain arithmetic (Python's
``hash`` is salted per process): splitmix64's finaliser over integers, and a polynomial hash over
the UTF-8 bytes of text, both computed with NumPy on whole chunks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_POLY = np.uint64(0x100000001B3)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads every input bit over the whole word."""
    with np.errstate(over="ignore"):
        x = x.astype(np.uint64, copy=True)
        x ^= x >> np.uint64(30)
        x *= _M1
        x ^= x >> np.uint64(27)
        x *= _M2
        x ^= x >> np.uint64(31)
    return x


def _int_hash(column: pa.Array) -> np.ndarray:
    values = np.asarray(column.cast(pa.int64()).to_numpy(zero_copy_only=False)).view(np.uint64)
    return _mix(values)


def _str_hash(column: pa.Array) -> np.ndarray:
    """sum(byte_j * P^(n-1-j)) mod 2^64 per string, via one reduceat over the data buffer."""
    column = column.cast(pa.large_string())
    n = len(column)
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int64)[column.offset : column.offset + n + 1]
    lengths = np.diff(offsets)
    out = np.zeros(n, dtype=np.uint64)
    if n and lengths.sum() > 0:
        data = np.frombuffer(column.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]].astype(np.uint64)
        ends = np.repeat(offsets[1:] - offsets[0], lengths)
        exponent = ends - 1 - np.arange(data.size)
        powers = np.ones(int(lengths.max()), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for i in range(1, powers.size):
                powers[i] = powers[i - 1] * _POLY
            terms = (data + np.uint64(1)) * powers[exponent]
        nonempty = lengths > 0
        starts = (offsets[:-1] - offsets[0])[nonempty]
        out[nonempty] = np.add.reduceat(terms, starts)
    with np.errstate(over="ignore"):
        return _mix(out ^ (lengths.astype(np.uint64) * _GOLDEN))


def key_hash(columns: Sequence[pa.Array | pa.ChunkedArray]) -> np.ndarray:
    """uint64 hash per row of the (composite) key; integers and text hash differently."""
    combined: np.ndarray | None = None
    for column in columns:
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if column.null_count:
            raise ValueError("cannot shard rows with a null key")
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        part = _int_hash(column) if pa.types.is_integer(column.type) else _str_hash(column)
        with np.errstate(over="ignore"):
            combined = part if combined is None else _mix(combined * _GOLDEN + part)
    if combined is None:
        raise ValueError("a key needs at least one column")
    return combined


def shard_mask(
    columns: Sequence[pa.Array | pa.ChunkedArray], *, shard_index: int, shard_count: int
) -> pa.Array:
    """Boolean mask of the rows shard ``shard_index`` of ``shard_count`` owns."""
    if shard_count < 1 or not 0 <= shard_index < shard_count:
        raise ValueError(f"shard index {shard_index} is outside 0..{shard_count - 1}")
    if shard_count == 1:
        return pc.equal(pa.repeat(1, len(columns[0])), 1)
    return pa.array(key_hash(columns) % np.uint64(shard_count) == np.uint64(shard_index))
