"""The generator of synthetic Sentinel-2 archives (public names: :mod:`sentinel_cube.testing`).

:mod:`._spec` (what to write: :class:`ProductSpec`, :func:`default_specs`),
:mod:`._scene` (the model that fixes every pixel, on the integer noise of
:mod:`._noise`), :mod:`._rasters` (band JP2s),
:mod:`._metadata`, :mod:`._percentages` and :mod:`._manifest` (the XML),
:mod:`._archive` (products and archives on disk, folders or zips),
:mod:`._break` (damaged products) and :mod:`._demo_archive` (the demo's archive).
"""
