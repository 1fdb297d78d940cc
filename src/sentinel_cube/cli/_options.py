"""Options and helpers shared by the commands of :mod:`sentinel_cube.cli`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .._cloud import is_remote

__all__: list[str] = []


class PathOrURL(click.ParamType):
    """A local path (``Path``), or an ``s3://``/``https://`` URL kept as text.

    Parameters
    ----------
    exists
        Whether a local path must exist (URLs are checked when they are read).
    """

    name = "path-or-url"

    def __init__(self, exists: bool = False) -> None:
        self.exists = exists

    def convert(self, value: Any, param: Any, ctx: Any) -> Path | str:
        if isinstance(value, Path):
            return value
        text = str(value)
        if is_remote(text):
            return text
        if self.exists and not Path(text).exists():
            self.fail(f"{text!r} does not exist", param, ctx)
        return Path(text)


def parse_aoi(text: str | None) -> Any:
    """``--aoi``: a ``minx,miny,maxx,maxy`` box (lon/lat) as a tuple, else the text (a file
    or WKT), or None."""
    if not text or "," not in text or Path(text).exists():
        return text
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a file nor 'minx,miny,maxx,maxy'", param_hint="--aoi"
        ) from None


class _ManyValues(click.Option):
    """An option taking several space-separated values: ``--bands B02 B03 B04``."""

    def add_to_parser(self, parser, ctx):
        super().add_to_parser(parser, ctx)
        for name in self.opts:
            option = parser._long_opt.get(name) or parser._short_opt.get(name)
            if option is None:
                continue
            original = option.process

            def process(value, state, _original=original):
                values = [value]
                while state.rargs and not state.rargs[0].startswith("-"):
                    values.append(state.rargs.pop(0))
                _original(" ".join(values), state)

            option.process = process


def _split(value: str | None) -> list[str]:
    return [] if not value else [v for v in value.replace(",", " ").split() if v]
