"""Generated products published as STAC providers publish them, for the STAC tests.

One small archive (scale 61: 180 px at 10 m): the two Budapest tiles on two dates, one
before processing baseline 04.00 (no radiometric offset) and one after (offset -1000,
its swath edge leaves part of 34TCT empty), every band. :func:`publish` lays out every
provider's tree under one folder that a :class:`~sentinel_cube.testing.FolderServer`
serves, one sub-folder per provider.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sentinel_cube.testing import BUDAPEST_TILES, default_specs, make_archive
from sentinel_cube.testing.stac import PROVIDERS, publish_items, stac_items

SCALE = 61
RESOLUTION = 10 * SCALE
#: 2021-08-10: baseline 03.01 (no offset); 2023-07-06: 05.09 (offset -1000), swath edge.
DATES = ("2021-08-10", "2023-07-06")


@dataclass
class Published:
    """Every provider's tree of the archive under ``root`` and the items, by provider.

    ``items[name]`` point at ``base_url/name/...``; :meth:`rebase` gives the same
    items pointing elsewhere (another server, an S3 prefix).
    """

    safe: list[Path]
    root: Path
    base_url: str
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def rebase(self, name: str, base_url: str) -> list[dict[str, Any]]:
        """The items of ``name`` with hrefs under ``base_url`` instead."""
        return stac_items(self.safe, name, base_url)


def make_stac_archive(root: Path) -> list[Path]:
    """The ``.SAFE`` folders of the STAC tests (see the module docstring)."""
    specs = default_specs(BUDAPEST_TILES, DATES, partial=1)
    return make_archive(root, specs, scale=SCALE)


def publish(safe: list[Path], root: Path, base_url: str) -> Published:
    """Publish ``safe`` as every provider would, under ``root/<provider>``."""
    published = Published(safe, root, base_url)
    for name in PROVIDERS:
        published.items[name] = publish_items(safe, root / name, name, f"{base_url}/{name}")
    return published


def harmonised(dn: np.ndarray) -> np.ndarray:
    """ESA DN as Earth Search's COGs hold them when ``earthsearch:boa_offset_applied``:
    the -1000 offset applied to every valid pixel (no data 0 and saturation kept), >= 1.

    Computed here, apart from the generator, as the tests' expectation."""
    valid = (dn > 0) & (dn < 65535)
    shifted = np.clip(dn.astype(np.int64) - 1000, 1, 65534)
    return np.where(valid, shifted, dn).astype(dn.dtype)
