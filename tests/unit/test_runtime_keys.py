"""Lookup keys of integer columns: canonical ASCII digits within 64 bits, nothing that aliases."""

from __future__ import annotations

import pytest

from modelrollout.runtime.store.base import INT64_MAX, INT64_MIN, RunSchema, coerce_key

INT_KEY = RunSchema(keys=(("id", "int"),), prediction="str")
TEXT_KEY = RunSchema(keys=(("user", "str"),), prediction="str")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (1, 1),
        ("1", 1),
        ("0", 0),
        ("-7", -7),
        (INT64_MAX, INT64_MAX),
        (str(INT64_MIN), INT64_MIN),
        ({"id": "42"}, 42),
    ],
)
def test_integer_keys_from_json_numbers_and_canonical_digit_strings(key, expected):
    assert coerce_key(INT_KEY, key) == (expected,)


@pytest.mark.parametrize(
    "key",
    ["١", "１", "٤٢", " 1 ", "1 ", "+1", "01", "007", "-0", "1_000", "1.0", "1e3", "0x1", "", "-", "１２"],
)
def test_strings_that_int_would_read_are_not_integer_keys(key):
    with pytest.raises(KeyError, match="canonical ASCII digits"):
        coerce_key(INT_KEY, key)


@pytest.mark.parametrize(
    "key", [INT64_MAX + 1, INT64_MIN - 1, 2**200, str(INT64_MAX + 1), "9" * 30, "-" + "9" * 400]
)
def test_integers_beyond_64_bits_are_refused_before_any_store_sees_them(key):
    with pytest.raises(KeyError, match="out of range"):
        coerce_key(INT_KEY, key)


def test_a_refusal_quotes_the_key_shortly():
    with pytest.raises(KeyError) as error:
        coerce_key(INT_KEY, 2**4000)
    assert "4001-bit integer" in str(error.value) and len(str(error.value)) < 200
    with pytest.raises(KeyError) as error:
        coerce_key(INT_KEY, "x" * 250)
    assert len(str(error.value)) < 250


@pytest.mark.parametrize("key", [True, 1.0, None, [[1]], {"id": 1.5}])
def test_non_integers_are_refused_for_integer_columns(key):
    with pytest.raises(KeyError, match="holds integers"):
        coerce_key(INT_KEY, key)


def test_text_columns_take_strings_as_they_are_and_integers_as_their_digits():
    assert coerce_key(TEXT_KEY, " 1 ") == (" 1 ",)
    assert coerce_key(TEXT_KEY, "١") == ("١",)
    assert coerce_key(TEXT_KEY, 2**70) == (str(2**70),)


def test_text_keys_with_nul_are_refused_as_no_store_can_hold_them():
    with pytest.raises(KeyError, match="without NUL"):
        coerce_key(TEXT_KEY, "a\x00b")
