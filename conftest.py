"""Names the docstring examples of ``src/sentinel_cube`` may use without importing them.

``pytest`` collects those examples (``--doctest-modules``, see ``pyproject.toml``);
each sees ``np``, ``xr`` and ``sc`` (``import sentinel_cube as sc``) and ``cube``, a
small in-memory reflectance cube shaped as :func:`sentinel_cube.open_cube` makes
them: ``(time, band, y, x)`` over Budapest in UTM zone 34 (EPSG:32634).
"""

from __future__ import annotations

from typing import Any

import pytest


def _small_cube() -> Any:
    """4 dates x B02 B03 B04 B08 x 24 x 24 pixels of 500 m, values on the 1e-4 grid."""
    import numpy as np
    import pandas as pd
    import rioxarray  # noqa: F401  (registers the .rio accessor)
    import xarray as xr

    rng = np.random.default_rng(0)
    shape = (4, 4, 24, 24)
    dn = rng.integers(200, 3000, shape)
    values = (dn.astype(np.float32) / np.float32(10000)).astype(np.float32)
    values[:, :, :3, :5] = np.nan  # a corner of no data
    times = pd.to_datetime(["2023-06-06", "2023-06-16", "2023-07-06", "2023-08-10"])
    cube = xr.DataArray(
        values,
        dims=("time", "band", "y", "x"),
        coords={
            "time": times.values,
            "band": np.array(["B02", "B03", "B04", "B08"], dtype=object),
            "y": 5268250.0 - 500 * np.arange(24),
            "x": 347250.0 + 500 * np.arange(24),
            "cloudcoverpercentage": ("time", np.array([3.5, 61.0, 12.25, 0.5])),
        },
        name="reflectance",
        attrs={"units": "1", "sentinel_cube_units": "reflectance"},
    )
    cube = cube.rio.write_crs("EPSG:32634").rio.write_nodata(np.nan, encoded=False)
    return cube.chunk({"time": 1, "band": 1, "y": 12, "x": 12})


@pytest.fixture(scope="session", autouse=True)
def _doctest_names(doctest_namespace: dict[str, Any]) -> None:
    import numpy as np
    import xarray as xr

    import sentinel_cube as sc

    doctest_namespace.update(np=np, xr=xr, sc=sc, cube=_small_cube())
