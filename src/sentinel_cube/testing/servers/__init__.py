"""Loopback HTTP servers that speak the catalogue APIs over a synthetic archive.

:class:`CDSEServer` (Copernicus Data Space: OData, identity service, downloads),
:class:`DHuSServer` (a sentinelsat-style DHuS hub) and :class:`STACServer` (a
STAC API) serve zipped products of :func:`~sentinel_cube.testing.make_archive`
on ``127.0.0.1`` with switchable :class:`Faults`, so the real catalogue clients
run against them offline. The demo and the examples use :class:`CDSEServer`.
"""

from ._cdse import CDSEServer
from ._dhus import DHuSServer
from ._loopback import Faults, LoopbackServer, ServedProduct, served_archive
from ._stac import STACServer

__all__ = [
    "CDSEServer",
    "DHuSServer",
    "Faults",
    "LoopbackServer",
    "STACServer",
    "ServedProduct",
    "served_archive",
]
