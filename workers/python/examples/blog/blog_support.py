"""Value rules shared by the blog handlers (spec §0.7, §0.8).

Blank values, exact money (``decimal.Decimal``, never binary floats), timestamps from one clock
reading per attempt, random ids, whole-value regular expressions, and JSON text written the way
every Tasker language writes it (compact, so messages match across languages).
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import secrets
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation, localcontext
from typing import Any, Optional

from tasker_core import StepContext, StepHandler, StepHandlerResult

_SPACE = " \t\n\x0b\x0c\r"
_CENT = Decimal("0.01")


def is_blank(value: Any) -> bool:
    """Absent (None), an empty or whitespace-only string, ``[]`` or ``{}``. Never ``0`` or ``False``."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip(_SPACE) == ""
    if isinstance(value, (list, dict)):
        return len(value) == 0
    return False


def is_true(value: Any) -> bool:
    """"x is true": exactly the boolean ``True`` (not ``1``, not ``"true"``)."""
    return value is True


def is_number(value: Any) -> bool:
    """A JSON number: int or float, but not bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: Decimal arithmetic that never runs out of digits (Python's default 28 would make ``quantize``
#: fail on large values). Handlers run their money arithmetic under ``localcontext(EXACT)``.
EXACT = Context(prec=80)
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
# The Rust handlers read numbers as rust_decimal values: at most 96 bits of mantissa, scale <= 28.
_RUST_DECIMAL_MAX = Decimal(2**96 - 1)
_RUST_DECIMAL_MAX_SCALE = 28


def decimal(value: Any) -> Optional[Decimal]:
    """The exact decimal value of a JSON number (``29.99`` stays 29.99) within the range every
    Tasker language reads exactly; None for anything else."""
    if not is_number(value):
        return None
    try:
        # repr() of a float is the shortest text that round-trips, i.e. the JSON text it came from.
        d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        return None
    if not d.is_finite() or abs(d) > _RUST_DECIMAL_MAX:
        return None
    exponent = d.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -_RUST_DECIMAL_MAX_SCALE:
        return None
    return d


def integer(value: Any) -> Optional[int]:
    """A JSON number with an integral value that fits 64 bits (``2`` and ``2.0`` alike, as JSON
    Schema's ``integer``); None for anything else."""
    d = decimal(value)
    if d is None or d != d.to_integral_value():
        return None
    i = int(d)
    return i if _I64_MIN <= i <= _I64_MAX else None


def round_cents(d: Decimal) -> Decimal:
    """Rounds to cents, half away from zero."""
    return d.quantize(_CENT, rounding=ROUND_HALF_UP)


def number_json(d: Decimal) -> Any:
    """A decimal as a JSON number: an int when integral, else a float (exact for <= 15 digits)."""
    if d == d.to_integral_value():
        return int(d)
    return float(d.normalize())


def money_json(d: Decimal) -> Any:
    """A money value as a JSON number with at most 2 decimals (``124.76``; ``100`` for 100.00)."""
    return number_json(round_cents(d))


def money_text(d: Decimal) -> str:
    """``$`` plus the value rounded to cents with exactly two decimals: ``$6100.00``."""
    return "$" + format(round_cents(d), "f")


def cents_text(cents: Any) -> str:
    """Integer cents written as money text: ``4999`` -> ``$49.99``."""
    return money_text(Decimal(cents) / 100)


def float_text(f: float) -> str:
    """A float as serde_json writes it: fixed notation for decimal exponents -5..=15 (``5.0``,
    ``0.00001``), else ``1e+16`` / ``1.5e-7``."""
    sign, digits, exponent = Decimal(repr(f)).as_tuple()
    prefix = "-" if sign else ""
    text = "".join(map(str, digits)).rstrip("0")
    if not text:
        return prefix + "0.0"
    assert isinstance(exponent, int)
    exponent += len(digits) - len(text)
    dec_exp = exponent + len(text) - 1
    if -5 <= dec_exp <= 15:
        if len(text) - 1 <= dec_exp:
            return prefix + text + "0" * (dec_exp - len(text) + 1) + ".0"
        if dec_exp >= 0:
            return prefix + text[: dec_exp + 1] + "." + text[dec_exp + 1 :]
        return prefix + "0." + "0" * (-dec_exp - 1) + text
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return f"{prefix}{mantissa}e{'+' if dec_exp >= 0 else '-'}{abs(dec_exp)}"


def json_text(value: Any) -> str:
    """Compact JSON text exactly as serde_json writes it (object keys sorted, floats as above)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{json_text(v)}" for k, v in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(json_text(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def full_match(pattern: str, value: str) -> bool:
    """Whole-value match in the spec's dialect: with ``re.ASCII``, ``\\d`` is ``[0-9]``, ``\\s`` is
    ``[ \\t\\n\\r\\f\\v]`` and ``\\w`` is ``[A-Za-z0-9_]``; case-sensitive; ``fullmatch`` does not
    let a trailing newline match."""
    return re.fullmatch(pattern, value, flags=re.ASCII) is not None


class Now:
    """The single clock reading a handler takes per attempt."""

    def __init__(self, at: Optional[_dt.datetime] = None) -> None:
        self.at = at if at is not None else _dt.datetime.now(_dt.timezone.utc)

    def iso(self) -> str:
        return iso_ms(self.at)

    def plus_days(self, days: int) -> _dt.datetime:
        return self.at + _dt.timedelta(seconds=days * 86_400)

    def compact_date(self) -> str:
        """``YYYYMMDD`` of the UTC date."""
        return self.at.strftime("%Y%m%d")


def iso_ms(t: _dt.datetime) -> str:
    """``2026-01-02T03:04:05.678Z`` (sub-millisecond digits truncated)."""
    t = t.astimezone(_dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)


def text_date(t: _dt.datetime) -> str:
    """``January 09, 2026`` (English month names whatever the locale)."""
    t = t.astimezone(_dt.timezone.utc)
    return f"{_MONTHS[t.month - 1]} {t.day:02d}, {t.year}"


def random_hex(n: int) -> str:
    """``n`` lowercase hex digits from a uniform random source."""
    return "".join(secrets.choice("0123456789abcdef") for _ in range(n))


def random_hex_upper(n: int) -> str:
    return random_hex(n).upper()


def random_int(lo: int, hi: int) -> int:
    """A uniform integer in ``lo..=hi``."""
    return lo + secrets.randbelow(hi - lo + 1)


class ExactHandler(StepHandler):
    """A handler whose :meth:`run` does its decimal arithmetic under :data:`EXACT`."""

    def call(self, context: StepContext) -> StepHandlerResult:
        with localcontext(EXACT):
            return self.run(context)

    def run(self, context: StepContext) -> StepHandlerResult:
        raise NotImplementedError(f"{type(self).__name__} must implement run(self, context)")
