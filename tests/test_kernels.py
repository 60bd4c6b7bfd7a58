"""The numba kernel of the cycle simulator equals its plain-Python twin."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from imcsim._kernels import COUNTS, count_stages, count_stages_py, slice_masks, slice_masks_py


def random_case(seed: int, slices: int, dac_bits: int, zeros: float):
    """Random images, windows and tiles in the kernels' flat layout."""
    rng = np.random.default_rng(seed)
    images, length, reach = rng.integers(1, 4), rng.integers(8, 60), rng.integers(1, 8)
    values = rng.integers(0, 2 ** (slices * dac_bits), size=(images, length + reach))
    x = np.where(rng.random(values.shape) < zeros, 0, values).astype(np.int64)
    sizes = rng.integers(1, 7, size=rng.integers(1, 5))
    return (
        x,
        rng.integers(0, length, size=rng.integers(1, 6)).astype(np.int64),
        rng.integers(0, reach, size=int(sizes.sum())).astype(np.int64),
        np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        rng.integers(1, 9, size=len(sizes)).astype(np.int64),
        rng.integers(1, 9, size=len(sizes)).astype(np.int64),
        slices,
        dac_bits,
    )


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1), slices=st.integers(1, 8), dac_bits=st.integers(1, 3),
    zeros=st.sampled_from([0.0, 0.5, 0.9, 1.0]),
)
def test_kernel_equals_twin(seed: int, slices: int, dac_bits: int, zeros: float) -> None:
    case = random_case(seed, slices, dac_bits, zeros)
    fast, slow = count_stages(*case), count_stages_py(*case)
    assert fast.shape == slow.shape == (len(case[0]), len(COUNTS))
    np.testing.assert_array_equal(fast, slow)
    no_skip = len(case[1]) * (len(case[3]) - 1) * slices
    assert (fast[:, 1] == no_skip).all()
    assert (fast[:, 0] <= fast[:, 1]).all()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), bits=st.integers(1, 20), dac_bits=st.integers(1, 4))
def test_slice_masks_equal_twin(seed: int, bits: int, dac_bits: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2**bits, size=(2, 17)).astype(np.int64)
    x[:, ::3] = 0
    masks, counts = slice_masks(x, dac_bits)
    twin_masks, twin_counts = slice_masks_py(x, dac_bits)
    np.testing.assert_array_equal(masks, twin_masks)
    np.testing.assert_array_equal(counts, twin_counts)
    assert (counts[:, ::3] == 0).all()


def test_hand_counted_tile() -> None:
    # One tile of 2 rows holding 0b101 and 0b001, 3 one-bit slices, 4 columns, 2 signals:
    # slice 0 drives 2 rows, slice 1 none (skipped), slice 2 one row.
    x = np.array([[5, 1]], dtype=np.int64)
    args = (x, np.array([0]), np.array([0, 1]), np.array([0, 2]), np.array([4]), np.array([2]), 3, 1)
    expected = [[2, 3, 3, 3 * 4, 2 * 2]]
    np.testing.assert_array_equal(count_stages(*args), expected)
    np.testing.assert_array_equal(count_stages_py(*args), expected)


def test_two_bit_dac_slices() -> None:
    # 0b1100 with 2-bit slices: slice 0 (bits 0-1) is zero, slice 1 (bits 2-3) is not.
    x = np.array([[12]], dtype=np.int64)
    args = (x, np.array([0]), np.array([0]), np.array([0, 1]), np.array([1]), np.array([1]), 2, 2)
    np.testing.assert_array_equal(count_stages(*args), [[1, 2, 1, 1, 1]])
    masks, counts = slice_masks(x, 2)
    assert (masks.tolist(), counts.tolist()) == ([[0b10]], [[1]])
