"""Rules shared by the two team-scaling namespaces (spec §4): the §4.0 mock rules (customer tier,
tier policy, purchase 30 days back) and the small value helpers both ``customer_success`` and
``payments`` use. A port of the private helpers of ``workers/rust/src/handlers/blog/team_scaling.rs``;
every function reads exactly as its Rust counterpart.

Amounts are integer cents (§0.7). A JSON whole-number float such as ``4999.0`` counts as an
integer and is written back as the int ``4999`` (:func:`cents_json`).
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Optional, Sequence, Tuple

from blog_support import Now, decimal, is_blank, json_text, money_text
from tasker_core.errors import PermanentError, RetryableError

#: Base namespace of §4.1, written into its results.
CUSTOMER_SUCCESS = "customer_success"
#: Base namespace of §4.2, written into its results and into the delegation's ``target_namespace``.
PAYMENTS = "payments"
#: The template §4.1.4 delegates to.
DELEGATED_WORKFLOW = "process_refund"
#: §4.1.4 always targets this payments version.
DELEGATED_VERSION = "2.1.0"

#: §4.0: the original purchase was 30 days before now.
DAYS_SINCE_PURCHASE = 30

# serde_json writes an integral number in this range as a JSON integer (i64 or u64).
_JSON_INT_MIN = -(2**63)
_JSON_INT_END = 2**64


def text(value: Any) -> str:
    """A value as text for substring tests and messages: a string as is, absent/null as ``""``,
    anything else as its compact JSON text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json_text(value)


def cents_json(d: Decimal) -> Any:
    """A cents amount as a JSON number: integral values are written as integers (§0.1 rule 3)."""
    if d == d.to_integral_value():
        n = int(d)
        if _JSON_INT_MIN <= n < _JSON_INT_END:
            return n
    return float(d.normalize())


def cents_value(value: Any) -> Any:
    """An amount read from the input or a dependency, normalised like :func:`cents_json`; a
    non-number is passed through unchanged (the input schemas make it an integer)."""
    d = decimal(value)
    return cents_json(d) if d is not None else value


def cents_money(value: Any) -> str:
    """``$49.99`` for 4999 cents (§0.7 "Money in text"); a non-number counts as 0."""
    d = decimal(value)
    if d is None:
        d = Decimal(0)
    return money_text(d / 100)


def customer_tier(customer_id: str) -> str:
    """§4.0 customer tier: case-insensitive ``vip``/``premium`` -> premium, else ``gold`` -> gold,
    else standard."""
    cid = customer_id.lower()
    if "vip" in cid or "premium" in cid:
        return "premium"
    if "gold" in cid:
        return "gold"
    return "standard"


@dataclass(frozen=True)
class TierPolicy:
    """One row of the §4.0 tier table."""

    refund_window_days: int
    requires_approval: bool
    max_amount: int  # cents


_POLICIES = {
    "premium": TierPolicy(refund_window_days=90, requires_approval=False, max_amount=100_000),
    "gold": TierPolicy(refund_window_days=60, requires_approval=False, max_amount=50_000),
    "standard": TierPolicy(refund_window_days=30, requires_approval=True, max_amount=10_000),
}


def tier_policy(tier: str) -> TierPolicy:
    """The §4.0 policy of a tier; an unknown tier gets the standard row."""
    return _POLICIES.get(tier, _POLICIES["standard"])


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)


def _parse_rfc3339(value: str) -> Optional[_dt.datetime]:
    m = _RFC3339.fullmatch(value)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    micros = int((m.group(7) or "0")[:6].ljust(6, "0"))
    try:
        if m.group(8):
            tz = _dt.timezone.utc
        else:
            sign = 1 if m.group(9) == "+" else -1
            tz = _dt.timezone(sign * _dt.timedelta(hours=int(m.group(10)), minutes=int(m.group(11))))
        return _dt.datetime(year, month, day, hour, minute, second, micros, tzinfo=tz)
    except ValueError:
        return None


def days_since(purchase: Any, now: Now) -> int:
    """Whole days from ``original_purchase_date`` to now; §4.0's 30 when the date is unreadable."""
    if not isinstance(purchase, str):
        return DAYS_SINCE_PURCHASE
    at = _parse_rfc3339(purchase)
    if at is None:
        return DAYS_SINCE_PURCHASE
    delta = now.at - at
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    # Whole seconds truncated toward zero, then days floored (chrono num_seconds + div_euclid).
    seconds = abs(micros) // 1_000_000 * (1 if micros >= 0 else -1)
    return seconds // 86_400


def blank_names(fields: Sequence[Tuple[str, Any]]) -> Optional[str]:
    """The names of the blank values, in order, ``", "``-joined (None when none is blank)."""
    blank = [name for name, value in fields if is_blank(value)]
    return ", ".join(blank) if blank else None


def permanent(code: str, message: str) -> PermanentError:
    return PermanentError(message, error_code=code)


def retryable(code: str, message: str, retry_after: int) -> RetryableError:
    return RetryableError(message, error_code=code, retry_after=retry_after)


__all__ = [
    "CUSTOMER_SUCCESS",
    "PAYMENTS",
    "DELEGATED_WORKFLOW",
    "DELEGATED_VERSION",
    "DAYS_SINCE_PURCHASE",
    "TierPolicy",
    "blank_names",
    "cents_json",
    "cents_money",
    "cents_value",
    "customer_tier",
    "days_since",
    "permanent",
    "retryable",
    "text",
    "tier_policy",
]
