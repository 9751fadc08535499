"""check_images, the one image validator, and the input-scale check."""

from __future__ import annotations

import numpy as np
import pytest

from sklcifar.validation import check_images, check_same_scale, input_scale


def test_rank_3_gains_a_channel_axis_and_uint8_passes_without_copy():
    X = np.zeros((2, 8, 8), np.uint8)
    checked = check_images(X)
    assert checked.shape == (2, 8, 8, 1) and np.shares_memory(checked, X)


def test_other_integer_dtypes_become_uint8_with_the_same_values():
    X = np.arange(256, dtype=np.int64).reshape(1, 16, 16)
    checked = check_images(X)
    assert checked.dtype == np.uint8
    np.testing.assert_array_equal(checked[..., 0], X)


def test_floats_keep_their_dtype_and_values():
    X = np.linspace(-3, 3, 64, dtype=np.float64).reshape(1, 8, 8, 1)
    checked = check_images(X)
    assert checked.dtype == np.float64 and np.shares_memory(checked, X)


@pytest.mark.parametrize(
    ("options", "X", "message"),
    [
        ({}, np.zeros((0, 8, 8)), "holds 0 images"),
        ({"allow_empty": True}, np.zeros((0, 8, 8, 5)), "has 5 channels"),
        ({"channels": None}, np.zeros((2, 8, 8, 5, 1)), "rank 5"),
        ({"unit_range": True}, np.full((1, 2, 2), 1.5), r"pixels in \[1.5, 1.5\]"),
        ({"name": "images"}, np.full((1, 2, 2), -1), "images has integer pixels in -1..-1"),
    ],
)
def test_refusals(options, X, message):
    with pytest.raises(ValueError, match=message):
        check_images(X, **options)


def test_empty_batches_where_the_caller_handles_them():
    assert check_images(np.zeros((0, 8, 8)), allow_empty=True).shape == (0, 8, 8, 1)


UNIT = {"kind": "unit"}
BYTE_FLOATS = {"kind": "float", "min": 0.0, "max": 255.0}
STANDARDISED = {"kind": "float", "min": -2.1, "max": 2.4}


@pytest.mark.parametrize(
    ("fitted", "X"),
    [
        (UNIT, np.full((1, 2, 2, 1), 255, np.uint8)),
        (UNIT, np.full((1, 2, 2, 1), 0.5)),
        (BYTE_FLOATS, np.full((1, 2, 2, 1), 200.0)),
        (BYTE_FLOATS, np.zeros((1, 2, 2, 1))),  # a black image is black on any scale
        (STANDARDISED, np.full((1, 2, 2, 1), 0.5)),
    ],
)
def test_same_scale_accepted(fitted, X):
    check_same_scale(X, fitted, owner="Model")


@pytest.mark.parametrize(
    ("fitted", "X", "got"),
    [
        (UNIT, np.full((1, 2, 2, 1), 200.0), r"floats in \[200, 200\]"),
        (BYTE_FLOATS, np.full((1, 2, 2, 1), 200, np.uint8), r"uint8 pixels \(read as 0..1\)"),
        (BYTE_FLOATS, np.full((1, 2, 2, 1), 0.8), r"floats in \[0.8, 0.8\]"),
        (STANDARDISED, np.full((1, 2, 2, 1), 3, np.uint8), r"uint8 pixels \(read as 0..1\)"),
    ],
)
def test_other_scale_refused(fitted, X, got):
    with pytest.raises(ValueError, match=f"X has {got}, but this Model was fitted on"):
        check_same_scale(X, fitted, owner="Model")


def test_input_scale_of_uint8_and_unit_floats_is_one_scale():
    assert input_scale(np.zeros((1, 2, 2, 1), np.uint8)) == input_scale(np.ones((1, 2, 2, 1)))


# A step that works in the input's own units (Standardize): uint8 is 0..255, not 0..1.
@pytest.mark.parametrize(
    ("fitted", "X"),
    [
        (BYTE_FLOATS, np.full((1, 2, 2, 1), 200, np.uint8)),
        (BYTE_FLOATS, np.full((1, 2, 2, 1), 200.0)),
        (UNIT, np.full((1, 2, 2, 1), 0.5)),
    ],
)
def test_same_units_accepted(fitted, X):
    check_same_scale(X, fitted, owner="Step", uint8_as_unit=False)


@pytest.mark.parametrize(
    ("fitted", "X", "got"),
    [
        (UNIT, np.full((1, 2, 2, 1), 200, np.uint8), r"uint8 pixels \(0..255\)"),
        (BYTE_FLOATS, np.full((1, 2, 2, 1), 0.8), r"floats in \[0.8, 0.8\]"),
        (STANDARDISED, np.full((1, 2, 2, 1), 3, np.uint8), r"uint8 pixels \(0..255\)"),
    ],
)
def test_other_units_refused(fitted, X, got):
    with pytest.raises(ValueError, match=f"X has {got}, but this Step was fitted on"):
        check_same_scale(X, fitted, owner="Step", uint8_as_unit=False)


def test_input_scale_of_uint8_in_its_own_units_is_a_byte_range():
    scale = input_scale(np.array([[[[3]], [[250]]]], np.uint8), uint8_as_unit=False)
    assert scale == {"kind": "float", "min": 3.0, "max": 250.0}
    assert input_scale(np.ones((1, 2, 2, 1)), uint8_as_unit=False) == {"kind": "unit"}
