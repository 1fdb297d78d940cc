"""Publish generated products as a provider would: its file tree and its STAC items."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from ...bands import normalize_band
from ._cdse import CDSE
from ._cog import EARTH_SEARCH_COG, PLANETARY_COMPUTER_COG, CogProfile, write_cog
from ._common import Planned
from ._earth_search import EarthSearch
from ._facts import ProductFacts, product_facts
from ._planetary import PlanetaryComputer

__all__ = [
    "PROVIDERS",
    "Provider",
    "item_collection",
    "provider",
    "publish_items",
    "stac_items",
]


class Provider(Protocol):
    """What :func:`publish_items` needs of a provider shape."""

    name: str
    collection: str

    def plan(self, facts: ProductFacts, bands: set[str]) -> list[Planned]: ...

    def item(self, facts: ProductFacts, bands: set[str], base_url: str,
             root: Path | None = None) -> dict[str, Any]: ...  # fmt: skip


#: The provider shapes by name.
PROVIDERS: tuple[str, ...] = ("earth_search", "planetary_computer", "cdse")
_COGS = {"earth_search": EARTH_SEARCH_COG, "planetary_computer": PLANETARY_COMPUTER_COG}


def provider(name: str | Provider) -> Provider:
    """The provider shape called ``name`` (with its defaults), or ``name`` itself.

    Examples
    --------
    >>> provider("cdse").name
    'cdse'
    """
    if not isinstance(name, str):
        return name
    shapes: dict[str, Any] = {"earth_search": EarthSearch, "planetary_computer": PlanetaryComputer,
                              "cdse": CDSE}  # fmt: skip
    if name not in shapes:
        raise ValueError(f"unknown provider {name!r}; choose from {', '.join(PROVIDERS)}")
    return shapes[name]()


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` at ``target`` (same bytes, no copy), else copy it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _write(planned: Planned, root: Path, profile: CogProfile) -> None:
    target = root / planned.relpath
    if planned.cog:
        write_cog(planned.source, target, profile, class_band=planned.class_band,
                  shift=planned.shift)  # fmt: skip
    else:
        _link_or_copy(planned.source, target)


def _bands(facts: ProductFacts, bands: Sequence[str] | None) -> set[str]:
    present = {image.band for image in facts.native_images()}
    if bands is None:
        return present
    chosen = {normalize_band(b) for b in bands}
    if chosen - present:
        missing = ", ".join(sorted(chosen - present))
        raise ValueError(f"{facts.safe.name} has no band file for {missing}")
    return chosen


def publish_items(
    products: Iterable[str | os.PathLike[str]],
    root: str | os.PathLike[str],
    shape: str | Provider,
    base_url: str,
    *,
    bands: Sequence[str] | None = None,
    cog_profile: CogProfile | None = None,
) -> list[dict[str, Any]]:
    """Write the provider's file tree of ``products`` under ``root``; return their items.

    Parameters
    ----------
    products : iterable of path
        L2A ``.SAFE`` folders from :func:`sentinel_cube.testing.make_archive`.
    root : path
        Folder that receives the provider's tree (created if needed). Serve it at
        ``base_url`` (:class:`~sentinel_cube.testing.FolderServer`), or upload it
        there (its paths are the object keys under ``base_url``).
    shape : str or Provider
        ``"earth_search"`` (COGs + JP2 twins), ``"planetary_computer"`` (COGs in a
        ``.SAFE`` layout) or ``"cdse"`` (the ``.SAFE`` folder's JP2 files), or a
        configured provider (``PlanetaryComputer(raster_bands=True)``).
    base_url : str
        Where ``root`` is reachable: ``http://127.0.0.1:PORT``, ``s3://bucket/prefix``
        or a local folder path. Every href is ``base_url/<path under root>``.
    bands : list of str, optional
        Band files to publish (``["B04", "SCL"]``); default every band present.
    cog_profile : CogProfile, optional
        How COGs are written; default the provider's at the archive's scale
        (:meth:`CogProfile.for_scale`).

    Returns
    -------
    list of dict
        One STAC item dict per product, in the order of ``products``.

    Examples
    --------
    >>> paths = make_archive(tmp, dates=["2023-07-06"], scale=61)  # doctest: +SKIP
    >>> items = publish_items(paths, tmp / "es", "earth_search", "http://127.0.0.1:8000")
    ... # doctest: +SKIP
    >>> items[0]["assets"]["red"]["href"]  # doctest: +SKIP
    'http://127.0.0.1:8000/sentinel-s2-l2a-cogs/34/T/CT/2023/7/S2A_34TCT_20230706_0_L2A/B04.tif'
    """
    maker = provider(shape)
    root = Path(root)
    items = []
    for path in products:
        facts = product_facts(Path(path))
        chosen = _bands(facts, bands)
        default = _COGS.get(maker.name, EARTH_SEARCH_COG).for_scale(facts.scale)
        for planned in maker.plan(facts, chosen):
            _write(planned, root, cog_profile or default)
        items.append(maker.item(facts, chosen, base_url, root))
    return items


def stac_items(
    products: Iterable[str | os.PathLike[str]],
    shape: str | Provider,
    base_url: str,
    *,
    bands: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """The items :func:`publish_items` returns, without writing any file.

    For a tree already published (or uploaded) elsewhere: the same items with hrefs
    under another ``base_url`` (an ``s3://`` copy of an HTTP-served tree...).

    Examples
    --------
    >>> s3_items = stac_items(paths, "cdse", "s3://eodata")  # doctest: +SKIP
    >>> s3_items[0]["assets"]["B04_10m"]["href"][:31]  # doctest: +SKIP
    's3://eodata/Sentinel-2/MSI/L2A/'
    """
    maker = provider(shape)
    items = []
    for path in products:
        facts = product_facts(Path(path))
        items.append(maker.item(facts, _bands(facts, bands), base_url))
    return items


def item_collection(items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A GeoJSON ``FeatureCollection`` of items (what a STAC search page holds).

    Examples
    --------
    >>> item_collection([])["type"]
    'FeatureCollection'
    """
    features = list(items)
    return {"type": "FeatureCollection", "features": features, "links": []}
