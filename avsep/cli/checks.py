"""Checks of command-line numbers, shared by the subcommands: each failure is a one-line
:class:`AvsepError` that names the option, raised before any work is done. (Output folders:
:func:`avsep.utils.check_output_folder`.)"""
from __future__ import annotations

import argparse

from avsep.errors import AvsepError


def option(name: str) -> str:
    return "--" + name.replace("_", "-")


def at_least(args: argparse.Namespace, **lows: float) -> None:
    """Each named option (left out when unset) is at least its low bound."""
    for name, low in lows.items():
        value = getattr(args, name)
        if value is not None and value < low:
            raise AvsepError(f"{option(name)} {value:g}: expected at least {low:g}")


def positive(args: argparse.Namespace, *names: str) -> None:
    """Each named option (left out when unset) is above zero."""
    for name in names:
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise AvsepError(f"{option(name)} {value:g}: expected a positive number")

