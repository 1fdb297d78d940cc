"""Loopback HTTP servers that speak a catalogue API over a synthetic archive.

``CDSEServer`` (Copernicus Data Space: OData, identity service, downloads) serves
zipped products of :func:`~sentinel_cube.testing.make_archive` on ``127.0.0.1``
with switchable ``Faults``, so the real CDSE client runs against it offline: the
demo and the examples use it. ``LoopbackServer`` is the base that the test suite's
DHuS and STAC servers also build on. ``S3Server`` is moto's S3 on the loopback (extra
``demo-s3``), for the demo's ``--s3`` stage and the object-storage tests. Public names
are imported from :mod:`sentinel_cube.testing`.
"""
