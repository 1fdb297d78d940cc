"""Exact percentiles and the stretch on adversarial values, against numpy.

The histograms are checked against references built without their arithmetic: the
grid's values looked up by bit pattern, ``np.bincount`` of the DN. Percentiles are
checked bit for bit against ``numpy.nanpercentile`` of the valid values, the stretched
pixels against the stretch formula written out in numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import sentinel_cube as sc
from sentinel_cube import SentinelCubeError
from sentinel_cube.ops import _percentile
from sentinel_cube.ops._percentile import GRID_OFFSET, N_BINS, grid_histogram, uint16_histogram

F32 = np.float32
#: Every grid value float32(k) / 10000, k = -1000 .. 64535, by bit pattern -> bin.
GRID = np.arange(-GRID_OFFSET, N_BINS - GRID_OFFSET).astype(F32) / F32(10000)
BIN_OF_BITS = {int(bits): i for i, bits in enumerate(GRID.view(np.uint32))}


def _reference_grid_histogram(values: np.ndarray) -> np.ndarray:
    """Counts by exact bit pattern; the last element: not NaN and not a grid value."""
    counts = np.zeros(N_BINS + 1, dtype=np.int64)
    for bits, value in zip(values.view(np.uint32).tolist(), values.tolist(), strict=True):
        if value != value:  # NaN
            continue
        counts[BIN_OF_BITS.get(bits, N_BINS)] += 1
    return counts


def _adversarial_reflectances(rng: np.random.Generator, n: int) -> np.ndarray:
    """Grid values (both ends included), NaN runs, and values that are not on the grid."""
    keys = rng.integers(-GRID_OFFSET, N_BINS - GRID_OFFSET, n)
    values = keys.astype(F32) / F32(10000)
    ends = np.array([GRID[0], GRID[-1], F32(0)] * 50, dtype=F32)  # -0.1, 6.4535, 0.0
    nan_run = np.full(3000, np.nan, F32)  # longer than a test piece: a piece of NaN only
    return np.concatenate([values, ends, nan_run])


@pytest.fixture
def small_pieces(monkeypatch):
    """Pieces of 1000 values: many pieces and a tail."""
    monkeypatch.setattr(_percentile, "_PIECE", 1000)


# ----------------------------------------------------------------------------- histograms


def test_grid_histogram_of_grid_values_nan_and_ends(small_pieces, monkeypatch):
    def no_slow_path(values):
        raise AssertionError("grid values took the path for values off the grid")

    monkeypatch.setattr(_percentile, "_grid_histogram_exact", no_slow_path)
    rng = np.random.default_rng(11)
    values = rng.permutation(_adversarial_reflectances(rng, 20_000))
    got = grid_histogram(values.reshape(1, 1, 1, -1))
    np.testing.assert_array_equal(got, _reference_grid_histogram(values))
    assert got[-1] == 0 and got.sum() == np.count_nonzero(~np.isnan(values))


def test_grid_histogram_counts_what_is_not_a_grid_value(small_pieces):
    rng = np.random.default_rng(12)
    on_grid = _adversarial_reflectances(rng, 5000)
    some = on_grid[rng.integers(0, 5000, 40)]
    neighbours = np.concatenate([np.nextafter(some, F32(np.inf)), np.nextafter(some, F32(-np.inf))])
    outside = np.array([-0.1001, 6.4536, 7.0, -2.0, 3e38, -3e38, np.inf, -np.inf, 1e-45,
                        0.12345, -0.0, -0.0], dtype=F32)  # fmt: skip
    for extra in (neighbours, outside, outside[:2], outside[-2:]):  # -0.0 alone, too
        values = rng.permutation(np.concatenate([on_grid, extra.astype(F32)]))
        got = grid_histogram(values)
        np.testing.assert_array_equal(got, _reference_grid_histogram(values))
        assert got[-1] == len(extra)


def test_grid_histogram_without_a_valid_value():
    assert not grid_histogram(np.full(5000, np.nan, F32)).any()
    assert not grid_histogram(np.zeros(0, F32)).any()


def test_uint16_histogram_drops_only_nodata(small_pieces):
    rng = np.random.default_rng(13)
    values = rng.integers(0, 65536, 25_000).astype(np.uint16)
    values[:500] = 0
    values[500:900] = 65535
    expected = np.bincount(values, minlength=N_BINS)
    expected[0] = 0
    np.testing.assert_array_equal(uint16_histogram(values), expected)
    with_zero = np.bincount(values, minlength=N_BINS)
    np.testing.assert_array_equal(uint16_histogram(values, nodata=None), with_zero)


# ----------------------------------------------------------------------------- percentiles


def _cube(values: np.ndarray, chunks: dict, units: str | None = None) -> xr.DataArray:
    attrs = {"sentinel_cube_units": units} if units else {}
    return xr.DataArray(values, dims=("time", "band", "y", "x"), attrs=attrs).chunk(chunks)


def _assert_bitwise(got: np.ndarray, expected: np.ndarray) -> None:
    """Equal values, NaN where NaN, and the same sign of zero."""
    np.testing.assert_array_equal(got, expected)
    assert (np.signbit(got) == np.signbit(expected)).all()


def _numpy_percentiles(values: np.ndarray, percentiles, nodata_zero: bool) -> np.ndarray:
    out = np.full((values.shape[1], len(percentiles)), np.nan)
    for b in range(values.shape[1]):
        band = values[:, b].ravel()
        valid = band[band != 0] if nodata_zero else band[~np.isnan(band)]
        if valid.size:
            out[b] = [np.nanpercentile(valid, p) for p in percentiles]
    return out


PERCENTILES = (0, 2, 37.5, 98, 100)


def test_reflectance_percentiles_on_the_grid_equal_numpy(small_pieces):
    rng = np.random.default_rng(14)
    values = np.full((3, 4, 40, 50), np.nan, F32)
    for b in (0, 1):  # band 2: the top end of the grid (and the bottom once); band 3: all NaN
        band = rng.permutation(_adversarial_reflectances(rng, 4000))[: 3 * 40 * 50]
        band[::7] = np.nan
        values[:, b] = band.reshape(3, 40, 50)
    values[:, 2] = np.where(np.isnan(values[:, 0]), np.nan, GRID[-1])
    values[1, 2, 0, 0] = GRID[0]  # ... and the bottom end once
    cube = _cube(values, {"time": 1, "band": 1, "y": 16, "x": 32}, units="reflectance")
    got = sc.cube_percentiles(cube, PERCENTILES).values
    _assert_bitwise(got, _numpy_percentiles(values, PERCENTILES, nodata_zero=False))
    assert np.isnan(got[3]).all()
    for method in ("grid", "radix"):
        _assert_bitwise(sc.cube_percentiles(cube, PERCENTILES, method=method).values, got)


@pytest.mark.parametrize("zeros", ["negative", "mixed"])
def test_negative_zero_is_not_taken_for_a_grid_value(zeros):
    rng = np.random.default_rng(15)
    values = (rng.integers(-20, 20, (2, 1, 30, 30)).astype(F32) / F32(10000)).astype(F32)
    values[values == 0] = F32(-0.0)
    if zeros == "mixed":
        values[0, 0, :3] = F32(0.0)
    cube = _cube(values, {"time": 1, "y": 16, "x": 16}, units="reflectance")
    low_q = 100 * np.count_nonzero(values < 0) / values.size  # a percentile on the zeros
    percentiles = (low_q + 1, 50)
    got = sc.cube_percentiles(cube, percentiles).values  # auto: the radix fallback
    expected = _numpy_percentiles(values, percentiles, nodata_zero=False)
    assert (got[:, 0] == 0).all()  # the first percentile is a zero
    if zeros == "negative":  # numpy returns -0.0: so must we
        _assert_bitwise(got, expected)
    else:  # which zero numpy returns depends on its partition order
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(SentinelCubeError, match="not reflectances on the 1e-4 grid"):
        sc.cube_percentiles(cube, percentiles, method="grid").compute()


def test_values_off_the_grid_fall_back_to_the_exact_radix_path(small_pieces):
    rng = np.random.default_rng(16)
    values = rng.integers(0, 3000, (2, 2, 40, 40)).astype(F32) / F32(10000)
    values[1, 1, 39, 39] = F32(0.12345)  # one value off the grid, in the last piece
    cube = _cube(values, {"time": 1, "band": 1, "y": 20, "x": 20}, units="reflectance")
    expected = _numpy_percentiles(values, PERCENTILES, nodata_zero=False)
    _assert_bitwise(sc.cube_percentiles(cube, PERCENTILES).values, expected)
    with pytest.raises(SentinelCubeError, match="1 values are not reflectances"):
        sc.cube_percentiles(cube, PERCENTILES, method="grid").compute()


def test_dn_percentiles_with_nodata_and_saturation_equal_numpy(small_pieces):
    rng = np.random.default_rng(17)
    values = rng.integers(0, 65536, (3, 3, 30, 40)).astype(np.uint16)
    values[:, 0, :, :20] = 65535  # saturated: a value like any other
    values[:, 1] = 0  # all no data
    values[:, 2, ::2] = 0
    cube = _cube(values, {"time": 2, "band": 2, "y": 16, "x": 16})  # several groups per block
    got = sc.cube_percentiles(cube, PERCENTILES).values
    _assert_bitwise(got, _numpy_percentiles(values, PERCENTILES, nodata_zero=True))
    assert got[0, -1] == 65535 and np.isnan(got[1]).all()
    per_frame = sc.cube_percentiles(cube, (2, 98), dims=("y", "x")).values
    for t in range(3):
        expected = _numpy_percentiles(values[t : t + 1], (2, 98), nodata_zero=True)
        _assert_bitwise(per_frame[t], expected)


# ----------------------------------------------------------------------------- stretch


def _numpy_stretch(values: np.ndarray, low, high, out: str, nodata_zero: bool) -> np.ndarray:
    """The stretch formula in numpy, per band: NaN (or DN 0) is no data."""
    low, high = np.asarray(low)[None, :, None, None], np.asarray(high)[None, :, None, None]
    data = values.astype(np.float64)
    nodata = values == 0 if nodata_zero else np.isnan(data)
    data[nodata] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(high > low, (data - low) / (high - low), 0.0)
    scaled = np.where(nodata, np.nan, np.clip(scaled, 0, 1))
    if out == "float":
        return scaled.astype(F32)
    return np.where(nodata, 0, np.rint(scaled * 255)).astype(np.uint8)


@pytest.mark.parametrize("out", ["uint8", "float"])
def test_stretch_of_adversarial_reflectances_equals_numpy(out):
    rng = np.random.default_rng(18)
    values = rng.integers(0, 4000, (2, 4, 24, 30)).astype(F32) / F32(10000)
    values[:, :, ::5] = np.nan
    values[:, 1] = np.where(np.isnan(values[:, 1]), np.nan, F32(0.25))  # low == high
    values[:, 2] = np.nan  # no valid value
    values[0, 3, 0, :4] = [GRID[0], GRID[-1], F32(0), F32(1)]
    cube = _cube(values, {"time": 1, "band": 2, "y": 16, "x": 16}, units="reflectance")
    got = sc.stretch(cube, (2, 98), out=out)
    low, high = got.stretch_low.values, got.stretch_high.values
    _assert_bitwise(np.stack([low, high], axis=1), _numpy_percentiles(values, (2, 98), False))
    expected = _numpy_stretch(values, low, high, out, nodata_zero=False)
    np.testing.assert_array_equal(got.values, expected)
    assert got.dtype == expected.dtype and got.dims == cube.dims


def test_stretch_of_dn_equals_numpy():
    rng = np.random.default_rng(19)
    values = rng.integers(0, 65536, (3, 2, 20, 20)).astype(np.uint16)
    values[:, 0, :5] = 0
    values[:, 1, 0, :3] = 65535
    cube = _cube(values, {"time": 1, "band": 1, "y": 8, "x": 8})
    got = sc.stretch(cube, (2, 98), dims=("y", "x"))  # one stretch per frame
    low, high = got.stretch_low.values, got.stretch_high.values  # (time, band)
    for t in range(3):
        expected = _numpy_stretch(values[t : t + 1], low[t], high[t], "uint8", nodata_zero=True)
        np.testing.assert_array_equal(got.values[t : t + 1], expected)
    assert (got.values[:, 0, :5] == 0).all()
