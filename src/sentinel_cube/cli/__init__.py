"""The ``sentinel-cube`` command line.

One module per command group: :mod:`._catalog` (``search``, ``download``),
:mod:`._build` (``build``), :mod:`._info` (``info``), :mod:`._ops` (``clip``,
``stretch``, ``aggregate``), :mod:`._report` (``report``), :mod:`._demo`
(``demo``, the offline pipeline on a generated archive) and :mod:`._bench`
(``bench``, measurements on this machine or a cluster).
"""

from __future__ import annotations

import click

from .. import __version__
from ._bench import bench_command
from ._build import build_command
from ._catalog import download, search
from ._demo import demo_command
from ._info import info_command
from ._ops import aggregate_command, clip_command, stretch_command
from ._report import report_command

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sentinel-cube")
def main() -> None:
    """Search, read and stack Sentinel-2 products into lazy cubes."""


main.add_command(search, "search")
main.add_command(download, "download")
for _command in (
    demo_command,
    info_command,
    build_command,
    clip_command,
    stretch_command,
    aggregate_command,
    report_command,
    bench_command,
):
    main.add_command(_command)
del _command
