"""Loopback HTTP servers that speak the catalogue APIs over a synthetic archive.

``CDSEServer`` (Copernicus Data Space: OData, identity service, downloads),
``DHuSServer`` (a sentinelsat-style DHuS hub) and ``STACServer`` (a STAC API)
serve zipped products of :func:`~sentinel_cube.testing.make_archive` on
``127.0.0.1`` with switchable ``Faults``, so the real catalogue clients run
against them offline; the demo and the examples use ``CDSEServer``. Their public
names are imported from :mod:`sentinel_cube.testing`.
"""
