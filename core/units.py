"""Units and labels: every number, point and error as the app, the CLI and the report write it.

A base module: no torch, no Streamlit, nothing from core's stages, so anyone may import it.
Sizes are written in the house style (1e6, 3e4, 512); byte counts in binary units (KiB,
MiB, GiB) unless a caller asks for SI (kB, MB, GB) by name; rates in SI (GB/s, TFLOP/s).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

# (name, size in the base unit, factor that turns the base unit into it)
_TIME = (("s", 1.0, 1.0), ("ms", 1e-3, 1e3), ("µs", 1e-6, 1e6), ("ns", 1e-9, 1e9))
_BINARY = (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))
_SI = (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3))
_RATE_PREFIXES = (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3))


def missing(value: Any) -> bool:
    """True for None, NaN, pd.NA and NaT: a value that is not there."""
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or an array is there
        return False


def as_number(value: Any) -> float | None:
    """``value`` as a finite float, or None (missing, a flag, text, NaN, infinite)."""
    if missing(value) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def plain(value: Any, *, finite: bool = False) -> Any:
    """A value as built-in Python: numpy scalars unwrapped, every kind of missing as None,
    dates and times as ISO text. With ``finite``, infinities become None too (JSON has none)."""
    if missing(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalar
    if isinstance(value, float) and (math.isnan(value) or (finite and math.isinf(value))):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def seconds(value_s: Any) -> str:
    """0.00042 -> '420 µs': ns, µs, ms or s with 3 significant digits; '-' when missing."""
    number = as_number(value_s)
    if number is None:
        return "-"
    unit, _, factor = next((t for t in _TIME if abs(number) >= t[1]), _TIME[-1])
    return f"{number * factor:.3g} {unit}"


def duration(value_s: Any) -> str:
    """A time estimate in words: 'under a second', 'about 40 s', 'about 3 min'; or '-'."""
    number = as_number(value_s)
    if number is None:
        return "-"
    if number < 1:
        return "under a second"
    return f"about {number:.0f} s" if number < 90 else f"about {number / 60:.0f} min"


def bytes_(n_bytes: Any) -> str:
    """3 * 2**30 -> '3.0 GiB': binary units, one decimal; 'unknown' when missing."""
    return _bytes(n_bytes, _BINARY)


def bytes_si(n_bytes: Any) -> str:
    """4.2e9 -> '4.2 GB': SI units (what a user types as '8GB'), as ``bytes_`` does."""
    return _bytes(n_bytes, _SI)


def _bytes(n_bytes: Any, ladder: tuple[tuple[str, float], ...]) -> str:
    number = as_number(n_bytes)
    if number is None:
        return "unknown"
    for unit, size in ladder:
        if abs(number) >= size:
            scaled = number / size  # 1e30TB, typed by someone, stays one short word
            return f"{scaled:.1f} {unit}" if scaled < 1e4 else f"{scaled:.1e} {unit}"
    return f"{int(number)} B"


def rate(per_s: Any, unit: str = "B") -> str:
    """5.12e11 -> '512 GB/s', rate(1.23e13, 'FLOP') -> '12.3 TFLOP/s'; '-' when missing."""
    number = as_number(per_s)
    if number is None:
        return "-"
    prefix, size = next(((p, s) for p, s in _RATE_PREFIXES if abs(number) >= s), ("", 1.0))
    return f"{number / size:.3g} {prefix}{unit}/s"


def _median_positive(values: Iterable[Any]) -> float:
    numbers = [n for n in map(as_number, values) if n is not None and n > 0]
    return statistics.median(numbers) if numbers else math.nan


def time_unit(values_s: Iterable[Any]) -> tuple[str, float]:
    """(label, factor) so that seconds * factor reads well on an axis: µs, ms or s by the
    median of the positive values (s when there are none)."""
    median_s = _median_positive(values_s)
    if not math.isfinite(median_s):
        return "s", 1.0
    unit, _, factor = next((t for t in _TIME[:3] if median_s >= t[1]), _TIME[2])
    return unit, factor


def bytes_unit(values_bytes: Iterable[Any]) -> tuple[str, float]:
    """(label, factor) for an axis of these byte counts, so that bytes * factor reads well:
    KiB, MiB or GiB by the median of the positive values (GiB when there are none)."""
    median_bytes = _median_positive(values_bytes)
    if not math.isfinite(median_bytes) or median_bytes >= 2**30:
        return "GiB", 2.0**-30
    return ("MiB", 2.0**-20) if median_bytes >= 2**20 else ("KiB", 2.0**-10)


def compact(number: Any, *, from_abs: float = 1e4) -> str:
    """The house style for a size: 30000 -> '3e4', 512 -> '512', 2.5 -> '2.5'; '?' when
    missing. Round numbers from ``from_abs`` on (1e3 for slider stops) get an exponent."""
    value = as_number(number)
    if value is None:
        return "?"
    if not value.is_integer():
        return f"{value:g}"
    whole = int(value)
    digits = str(abs(whole))
    if abs(whole) >= from_abs and len(digits.rstrip("0")) == 1:
        return f"{'-' if whole < 0 else ''}{digits[0]}e{len(digits) - 1}"
    return str(whole)


def short(number: Any) -> str:
    """Slider stops for sizes that span decades: 1e3, 3e3, ... 1e9."""
    return compact(number, from_abs=1e3)


def decade_stops(low: float, high: float, steps: Sequence[int] = (1, 3)) -> list[int]:
    """1e3, 3e3, 1e4, ... up to ``high``: even spacing on a log axis."""
    exponents = range(math.floor(math.log10(low)), math.floor(math.log10(high)) + 1)
    return [s * 10**e for e in exponents for s in steps if low <= s * 10**e <= high]


def is_decade(number: float) -> bool:
    return number > 0 and math.log10(number).is_integer()


def about(number: Any) -> str:
    """An estimate (a crossover, say) to 2 significant digits in the house style:
    22012.3 -> '2.2e4', 1e5 -> '1e5', 316.2 -> '320', 64 -> '64'; '?' when missing."""
    value = as_number(number)
    if value is None:
        return "?"
    value = float(f"{value:.2g}")
    if abs(value) < 1e4:
        return f"{value:g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa.removesuffix('.0')}e{int(exponent)}"


def speedup(value: Any) -> str:
    """A speedup with precision that suits its size: '12×', '3.2×', '0.25×'; '' when missing."""
    number = as_number(value)
    if number is None:
        return ""
    return f"{number:{'.0f' if number >= 10 else '.1f' if number >= 1 else '.2g'}}×"


def speedup_range(value: Any, low: Any, high: Any) -> str:
    """A speedup with its 95% interval, '12.3× (11.8–12.9×)'; the bare figure when the
    interval is unknown; '' when missing."""
    number, lo, hi = as_number(value), as_number(low), as_number(high)
    if number is None:
        return ""
    if lo is None or hi is None:
        return speedup(number)
    return f"{_three_digits(number)}× ({_three_digits(lo)}–{_three_digits(hi)}×)"


def _three_digits(number: float) -> str:
    return f"{number:.0f}" if abs(number) >= 100 else f"{number:.3g}"


def ratio(value: Any) -> str:
    """A ratio of times to 3 significant digits: '0.53×', '2×'; '-' when missing."""
    number = as_number(value)
    return "-" if number is None else f"{number:.3g}×"


def point_label(
    workload_name: str | None, params: Mapping[str, Any], *, all_named: bool = False
) -> str:
    """'train resnet18 batch=64 image_size=64': the point as a person would say it; missing
    values left out. With ``all_named`` text too carries its name ('op=add size=1e6')."""
    parts = [str(workload_name)] if workload_name else []
    for name, value in params.items():
        if missing(value):
            continue
        is_text = as_number(value) is None
        shown = str(plain(value)) if is_text else compact(value)
        parts.append(shown if is_text and not all_named else f"{name}={shown}")
    return " ".join(parts)


def echo(value: Any, limit: int = 60) -> str:
    """Input or stored text as a message shows it: control characters (a terminal's
    escape sequences among them) written as escapes, cut to ``limit`` characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value))
    return text if len(text) <= limit else text[:limit] + "…"


def one_line(error: BaseException, *, typed: bool = False, limit: int = 300) -> str:
    """The first line of an error's text, cut to ``limit`` characters; its class name when
    the text is empty. With ``typed``: 'ValueError: first line'."""
    first, name = (str(error).strip().splitlines() or [""])[0][:limit], type(error).__name__
    if not first:
        return name
    return f"{name}: {first}" if typed else first
