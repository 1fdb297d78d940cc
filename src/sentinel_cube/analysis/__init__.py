"""Analytics of the products table: acquisitions, land-cover series, correlation, coverage.

Every function takes the products GeoDataFrame a catalogue search returns (see
:mod:`sentinel_cube.schema`) and returns a pandas object with labelled index and
columns; ``attrs`` holds units and labels. Times are the UTC sensing times
(``beginposition``); period labels are tz-naive UTC timestamps, labelled as pandas
labels them (``"W"``: the Sunday ending the week, ``"MS"``: the first of the month).

Examples
--------
>>> import sentinel_cube as sc                                              # doctest: +SKIP
>>> products = sc.LocalCatalog("archive/").search("budapest.geojson")       # doctest: +SKIP
>>> sc.analysis.acquisitions(products, "W", by="platform")                  # doctest: +SKIP
>>> sc.analysis.landcover(products, "MS")                                   # doctest: +SKIP
>>> sc.analysis.climatology(products, "snowicepercentage", by="month")      # doctest: +SKIP
>>> sc.analysis.correlation(products, method="spearman")                    # doctest: +SKIP
>>> sc.analysis.coverage_summary(products, "budapest.geojson")              # doctest: +SKIP
"""

from ._acquisitions import acquisitions
from ._common import CONTENT_COLUMNS, column_label
from ._correlation import correlation
from ._coverage import coverage_summary
from ._landcover import climatology, landcover

__all__ = [
    "CONTENT_COLUMNS",
    "acquisitions",
    "climatology",
    "column_label",
    "correlation",
    "coverage_summary",
    "landcover",
]
