"""Interactive views of products and cubes, built on hvplot / holoviews / bokeh.

Every function returns a holoviews object: it displays with its tools and widgets in
a notebook, and :func:`save` writes it to a standalone HTML page (BokehJS inline, no
network needed to open it) or a PNG (matplotlib, ``pip install 'sentinel-cube[png]'``).

- :func:`footprints`: product footprints over the AOI, coloured by any column, hover
  with id, date, cloud cover and AOI fraction; plain lon/lat axes (basemap tiles on
  request, fetched online by the browser).
- :func:`acquisitions_plot`, :func:`landcover_plot`, :func:`correlation_plot`: views of
  :mod:`sentinel_cube.analysis`.
- :func:`cube_view`: browse a lazy cube with a time slider and band selector, RGB
  composites stretched with :func:`sentinel_cube.stretch`; only the frame shown is
  computed.

Examples
--------
>>> import sentinel_cube as sc                                              # doctest: +SKIP
>>> view = sc.plot.footprints(products, "budapest.geojson", color="tileid") # doctest: +SKIP
>>> sc.plot.save(view, "footprints.html")                                   # doctest: +SKIP
>>> sc.plot.save(sc.plot.landcover_plot(products, "MS"), "landcover.png")   # doctest: +SKIP
"""

from ._cube import cube_view
from ._footprints import footprints
from ._save import save
from ._series import acquisitions_plot, correlation_plot, landcover_plot

__all__ = [
    "acquisitions_plot",
    "correlation_plot",
    "cube_view",
    "footprints",
    "landcover_plot",
    "save",
]
