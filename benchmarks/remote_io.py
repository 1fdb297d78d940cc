"""Requests and bytes of remote reads and writes, against a loopback S3 server.

What a cluster pays object storage for: the requests and bytes of reading one
product's metadata (a ``.SAFE`` folder and a ``.zip``), one chunk aligned on a
JPEG 2000 tile, a whole band, and writing a cube store. Bytes *needed* for a chunk
are the lengths of the JPEG 2000 tile-parts it covers, read from the codestream's
``SOT`` markers (the least any reader could fetch).

    python -m benchmarks.remote_io --scale 2 --out remote.json

``--scale 1`` is a full-size 10980 x 10980 band (about a minute to generate); the
default, 2, is 5490 x 5490 px in 1024 px JPEG 2000 tiles, as ESA tiles them.
"""

from __future__ import annotations

import argparse
import json
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BLOCK = 1024  # ESA's JPEG 2000 tile side at 10 m


def tile_part_lengths(jp2: Path) -> list[int]:
    """Byte lengths of the codestream's tile-parts, in file order (``Psot`` of each ``SOT``).

    Hand-written: a few lines of marker walking, where no maintained library exposes the
    tile-part index of a JPEG 2000 file.
    """
    data = jp2.read_bytes()
    lengths = []
    at = data.find(b"\xff\x90")  # the first SOT marker
    while at != -1 and at + 12 <= len(data) and data[at : at + 2] == b"\xff\x90":
        psot = struct.unpack(">I", data[at + 6 : at + 10])[0]
        if psot == 0:  # the last tile-part runs to the end of the codestream
            lengths.append(len(data) - at)
            break
        lengths.append(psot)
        at += psot
    return lengths


def measure(server: Any, action: Callable[[], object]) -> dict[str, float]:
    """Requests, bytes the server sent and received, and seconds of ``action()``."""
    before = server.traffic
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    used = server.traffic - before
    return {"requests": used.requests, "sent": used.sent, "received": used.received,
            "seconds": seconds}  # fmt: skip


def run(scale: int, root: Path) -> dict[str, Any]:
    import numpy as np

    import sentinel_cube as sc
    from sentinel_cube.testing import S3Server, make_archive

    kind = {"dates": ["2023-06-01"], "tiles": ["34TCT"], "scale": scale,
            "bands": ["B04", "B08", "SCL"], "block_size": BLOCK}  # fmt: skip
    (folder,) = make_archive(root / "safe", **kind)
    (zipped,) = make_archive(root / "zips", zipped=True, **kind)
    results: dict[str, Any] = {"scale": scale}
    with S3Server() as server:
        so = server.storage_options()
        server.create_bucket("bench")
        # a copy per measure: GDAL caches what it fetched per object, per process
        url, band_url, store_url = (server.upload(folder, f"archive-{n}", "bench") for n in "abc")
        zip_url = server.upload(zipped, "zips", "bench")
        results["metadata folder"] = measure(
            server, lambda: sc.read_product(url, None, storage_options=so)
        )
        results["metadata zip"] = measure(
            server, lambda: sc.read_product(zip_url, None, storage_options=so)
        )

        product = sc.read_product(url, None, storage_options=so)
        band = product.band("B04")
        rows, cols = band.shape
        local = folder / band.path.split(".SAFE/", 1)[1]
        lengths = tile_part_lengths(local)
        across = -(-cols // BLOCK)
        # the tile in the second row and column: header reads are not mistaken for it
        needed = lengths[1 * across + 1] if len(lengths) > across + 1 else lengths[-1]
        cube = sc.open_cube(
            [product], bands=["B04"], resolution=10, chunks=BLOCK, units="dn", storage_options=so
        )
        window = cube.isel(time=0, y=slice(BLOCK, 2 * BLOCK), x=slice(BLOCK, 2 * BLOCK))
        results["one chunk"] = {**measure(server, window.compute), "needed": needed}
        whole = sc.open_cube(
            [band_url], bands=["B04"], resolution=10, chunks=BLOCK, units="dn", storage_options=so
        )
        results["whole band"] = {
            **measure(server, whole.compute),
            "needed": local.stat().st_size,
        }
        zip_cube = sc.open_cube(
            [zip_url], bands=["B04"], resolution=10, chunks=BLOCK, units="dn", storage_options=so
        )
        results["whole band in zip"] = {
            **measure(server, zip_cube.compute),
            "needed": local.stat().st_size,
        }

        store_cube = sc.open_cube(
            [store_url], bands=["B04", "B08"], resolution=20, chunks=BLOCK, storage_options=so
        )
        store = "s3://bench/cubes/one.zarr"
        written: dict[str, Any] = {}

        def write() -> None:
            written["report"] = sc.to_zarr(store_cube, store, progress=False, storage_options=so)

        results["store write"] = measure(server, write)
        report = written["report"]
        chunks = int(np.prod(store_cube.data.numblocks))
        results["store write"].update(
            steps=len(report.written), chunks=chunks, stored=report.bytes_written
        )
        results["store rerun"] = measure(server, write)
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        "| what | requests | bytes moved (read; written for stores) "
        "| bytes needed (stored for stores) | ratio | seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in results.items():
        if not isinstance(row, dict):
            continue
        needed = row.get("needed") or row.get("stored")
        moved = row["sent"] if "stored" not in row else row["received"]
        ratio = f"{moved / needed:.2f}" if needed else ""
        lines.append(
            f"| {name} | {row['requests']} | {moved} | {needed or ''} | {ratio} | "
            f"{row['seconds']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sc-remote-io-") as root:
        results = run(args.scale, Path(root))
    print(table(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
