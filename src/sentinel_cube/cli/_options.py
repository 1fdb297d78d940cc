"""Options and helpers shared by the commands of :mod:`sentinel_cube.cli`."""

from __future__ import annotations

import click

__all__: list[str] = []


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
