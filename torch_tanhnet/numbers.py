"""Numbers as a person writes them, on a command line or in a CSV file.

Python's ``int`` and ``float`` read more than that: ``0_5`` is 5 (a slip for 0.5 trained at ten times the
learning rate), and other scripts' digits count (``٠.٥``, a fullwidth ``５``). No spreadsheet writes those and
numpy's ``loadtxt`` refuses them; here they are not numbers either, so a typo is an error rather than a value.
"""

from __future__ import annotations

import argparse
import math
import re

from .checks import cut


def past_int64(digits: int) -> str:
    """The words for an integer of ``digits`` digits past what the settings take (flags and Python alike)."""
    return f"must be within ±2**63, got an integer of {digits} digits"


def past_float(what: str) -> str:
    """The words for a number past a float's range, ``what`` naming it as it came."""
    return f"must be within a float's range (±1.8e308), got {what}"


def _plain(text: str) -> str:
    if not text.isascii() or "_" in text:
        raise ValueError(f"not a number as written on a command line or in a CSV file: {text!r}")
    return text


class OutOfRange(argparse.ArgumentTypeError, ValueError):
    """A number as written that a float or the scripts' integers cannot hold (``1e400``, ``1e-400``, 10**400):
    argparse writes its message as it is (``argument --lr: must be within a float's range ...``)."""


def integer(text: str) -> int:
    """``int(text)`` for ASCII digits (and sign, spaces) without underscores; ValueError otherwise, and
    :class:`OutOfRange` for an integer of more than 300 digits, near a float's range (10**400 overflowed the
    scripts' memory estimates; a smaller one past what a setting takes is the setting's own error, such as a seed's
    range or ±2**63)."""
    digits = _plain(text).strip().lstrip("+-").lstrip("0")
    if digits.isdigit() and len(digits) > 300:  # also spares int() its limit of 4300 digits
        raise OutOfRange(past_int64(len(digits)))
    return int(text)


def real(text: str) -> float:
    """``float(text)`` for ASCII text without underscores (``1e-3``, ``inf``, ``nan`` too); ValueError otherwise,
    and :class:`OutOfRange` for a finite number past a float's range (``1e400``, 400 digits), which float() makes
    an infinity the user did not write ("must be a positive number, got inf"), or below it (``1e-400``, made 0)."""
    value = float(_plain(text))
    if math.isinf(value) and "inf" not in text.lower():
        raise OutOfRange(past_float(cut(text.strip())))
    if value == 0 and any(c in "123456789" for c in text.lower().split("e")[0]):  # 1e-400: "must be a positive
        # number, got 0.0" (a digit other than 0 before the exponent: not a zero)
        raise OutOfRange(f"must be 0 or at least a float's smallest (5e-324), got {cut(text.strip())}, which "
                         "rounds to 0")
    return value


# argparse names the type in its error: "argument --lr: invalid float value: '0_5'", as for any other typo
integer.__name__, real.__name__ = "int", "float"


# A word that starts as a number does: -1e-3, -.5, -inf, -nan (argparse's own test is ^-\d+$|^-\d*\.\d+$).
_NEGATIVE = re.compile(r"-(\d|\.\d|inf|nan)", re.IGNORECASE)


def take_negatives(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Let ``parser`` read ``--lr -1e-3`` and ``--lr -inf`` as a flag and its value, as it reads ``--lr -0.5``.

    argparse takes a word after a flag for a value only when it looks like ``-1`` or ``-.5``; other numbers it
    reads as an unknown option: ``--lr -1e-3`` said "expected one argument" rather than the flag's own check
    ("must be a positive number, got -0.001"). Call it after the last ``add_argument``; an option that such a
    word would shadow is refused. The pattern is a private attribute of argparse's parser: where a Python lacks
    it, nothing changes (``--lr=-1e-3`` works everywhere).
    """
    if hasattr(parser, "_negative_number_matcher"):
        clash = [s for a in parser._actions for s in a.option_strings if _NEGATIVE.match(s)]
        if clash:
            raise ValueError(f"options {clash} read as negative numbers")
        parser._negative_number_matcher = _NEGATIVE
    return parser
