"""Deterministic noise for the scene model: integer hashing and value noise.

Everything is integer arithmetic (splitmix64 hashing, bilinear value noise on
lattices of power-of-two cells), so a pixel's value is identical on every
platform and does not depend on the window it is computed in.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__: list[str] = []  # helpers of the scene model only


# --------------------------------------------------------------------------------------
# Integer hashing (splitmix64), identical on every platform
# --------------------------------------------------------------------------------------

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_U64_GOLDEN = np.uint64(_GOLDEN)
_U64_M1 = np.uint64(_M1)
_U64_M2 = np.uint64(_M2)
_S30, _S27, _S31, _S40 = (np.uint64(n) for n in (30, 27, 31, 40))


def _mix_int(z: int) -> int:
    z &= _MASK
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


def _seed(*parts: int) -> int:
    """Combine Python integers into a 64-bit seed (pure Python, exact)."""
    h = 0x5EED5EED
    for part in parts:
        h = _mix_int(h ^ ((part + _GOLDEN) & _MASK))
    return h


def _mix(z: NDArray[np.uint64]) -> NDArray[np.uint64]:
    z = z ^ (z >> _S30)
    z = z * _U64_M1
    z = z ^ (z >> _S27)
    z = z * _U64_M2
    return z ^ (z >> _S31)


def _as_u64(a: NDArray[np.int64]) -> NDArray[np.uint64]:
    return np.asarray(a, dtype=np.int64).view(np.uint64)


def _hash2(seed: int, a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.uint64]:
    """splitmix64 hash of two int64 arrays (broadcast) under a seed."""
    h = _mix(np.uint64(seed & _MASK) ^ (_as_u64(a) + _U64_GOLDEN))
    return _mix(h ^ (_as_u64(b) + _U64_GOLDEN))


def _uniform(seed: int, a: NDArray[np.int64], b: NDArray[np.int64], n: int) -> NDArray[np.int64]:
    """Integers uniform in ``[0, n)`` (``n <= 2**24``) from the hash of ``(a, b)``.

    Multiply-shift range reduction of the hash's top 24 bits: ``(h >> 40) * n >> 24``.
    """
    top = _hash2(seed, a, b) >> _S40
    return ((top * np.uint64(n)) >> np.uint64(24)).astype(np.int64)


# --------------------------------------------------------------------------------------
# Value noise on integer lattices with power-of-two cells
# --------------------------------------------------------------------------------------

_TABLE_LIMIT = 4_000_000  # largest lattice table computed for a gather


def _is_grid(xi: NDArray[np.int64], yi: NDArray[np.int64]) -> bool:
    """True for a separable grid: ``xi`` of shape (1, W) and ``yi`` of shape (H, 1)."""
    return xi.ndim == 2 and yi.ndim == 2 and xi.shape[0] == 1 and yi.shape[1] == 1


def _value_noise(
    seed: int, xi: NDArray[np.int64], yi: NDArray[np.int64], shift: int
) -> NDArray[np.int64]:
    """Bilinear integer value noise in [0, 1023] on a lattice of ``2**shift`` m cells.

    Lattice values are ``_uniform(seed, cx, cy, 1024)``; with ``f = x mod cell``
    and ``g = cell - f`` the result is
    ``((v00 gx + v10 fx) gy + (v01 gx + v11 fx) fy) >> (2 shift)``.
    """
    cell = 1 << shift
    cx, cy = xi >> shift, yi >> shift
    fx, fy = xi & (cell - 1), yi & (cell - 1)
    gx, gy = cell - fx, cell - fy
    if cx.size == 0 or cy.size == 0:
        return np.zeros(np.broadcast_shapes(xi.shape, yi.shape), dtype=np.int64)
    x0, x1 = int(cx.min()), int(cx.max()) + 1
    y0, y1 = int(cy.min()), int(cy.max()) + 1
    if (x1 - x0 + 1) * (y1 - y0 + 1) <= _TABLE_LIMIT:
        table = _uniform(
            seed,
            np.arange(x0, x1 + 1, dtype=np.int64)[None, :],
            np.arange(y0, y1 + 1, dtype=np.int64)[:, None],
            1024,
        )
        ix, iy = cx - x0, cy - y0
        if _is_grid(xi, yi):  # interpolate along x on lattice rows first (cheap)
            ix1, gx1, fx1 = ix[0], gx[0], fx[0]
            rows = table[:, ix1] * gx1 + table[:, ix1 + 1] * fx1
            iy1 = iy[:, 0]
            return (rows[iy1] * gy + rows[iy1 + 1] * fy) >> (2 * shift)
        v00, v10 = table[iy, ix], table[iy, ix + 1]
        v01, v11 = table[iy + 1, ix], table[iy + 1, ix + 1]
    else:
        one = np.int64(1)
        v00, v10 = _uniform(seed, cx, cy, 1024), _uniform(seed, cx + one, cy, 1024)
        v01, v11 = _uniform(seed, cx, cy + one, 1024), _uniform(seed, cx + one, cy + one, 1024)
    return ((v00 * gx + v10 * fx) * gy + (v01 * gx + v11 * fx) * fy) >> (2 * shift)


def _field(
    seed: int, xi: NDArray[np.int64], yi: NDArray[np.int64], big: int, small: int
) -> NDArray[np.int64]:
    """Two-octave value noise ``(3 N(2**big) + N(2**small)) >> 2`` in [0, 1023]."""
    coarse = _value_noise(seed, xi, yi, big)
    fine = _value_noise(_seed(seed, 1), xi, yi, small)
    return (3 * coarse + fine) >> 2
