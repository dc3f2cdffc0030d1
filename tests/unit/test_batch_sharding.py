"""Shard selection by a stable key hash: every row in exactly one shard, the same in every process."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from modelrollout.runtime.batch.sharding import key_hash, shard_mask


def test_hash_values_are_pinned_so_shards_of_different_releases_agree():
    # If these change, a retried shard of an old run would select other rows: never change them.
    assert key_hash([pa.array([1, 2, -1])]).tolist() == [
        6238072747940578789,
        15839785061582574730,
        13029008266876403067,
    ]
    assert key_hash([pa.array(["", "a", "ab"])]).tolist() == [0, 17360999193197444373, 5764005521410506521]


def test_hash_of_a_row_does_not_depend_on_the_chunk_it_arrives_in():
    users = pa.array([f"user-{i}" for i in range(1000)])
    whole = key_hash([users])
    parts = np.concatenate([key_hash([users.slice(i, 137)]) for i in range(0, 1000, 137)])
    assert np.array_equal(whole, parts)
    chunked = pa.chunked_array([users.slice(0, 500), users.slice(500)])
    assert np.array_equal(key_hash([chunked]), whole)


def test_integer_widths_and_text_encodings_hash_by_value():
    assert np.array_equal(key_hash([pa.array([5, 6], pa.int32())]), key_hash([pa.array([5, 6], pa.int64())]))
    dictionary = pa.array(["x", "y", "x"]).dictionary_encode()
    assert np.array_equal(key_hash([dictionary]), key_hash([pa.array(["x", "y", "x"])]))
    assert np.array_equal(key_hash([pa.array(["é"], pa.large_string())]), key_hash([pa.array(["é"])]))


def test_composite_keys_hash_all_their_columns_in_order():
    region = pa.array(["eu", "eu", "us"])
    ids = pa.array([1, 2, 1])
    h = key_hash([region, ids])
    assert len(set(h.tolist())) == 3
    assert not np.array_equal(h, key_hash([ids, region]))


def test_every_row_lands_in_exactly_one_shard_and_shards_are_balanced():
    keys = [pa.array([f"u{i}" for i in range(30_000)]), pa.array(np.arange(30_000) % 7)]
    masks = [np.asarray(shard_mask(keys, shard_index=i, shard_count=4)) for i in range(4)]
    assert np.array_equal(np.sum(masks, axis=0), np.ones(30_000))
    sizes = [int(m.sum()) for m in masks]
    assert all(abs(s - 7_500) < 400 for s in sizes), sizes


def test_one_shard_owns_everything_and_bad_indices_are_refused():
    assert np.asarray(shard_mask([pa.array([1, 2, 3])], shard_index=0, shard_count=1)).all()
    with pytest.raises(ValueError, match="outside"):
        shard_mask([pa.array([1])], shard_index=2, shard_count=2)


def test_null_keys_cannot_be_sharded():
    with pytest.raises(ValueError, match="null key"):
        key_hash([pa.array([1, None])])
