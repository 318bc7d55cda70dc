"""Widgets whose values live in the URL, so that a link reproduces a view (for talks).

On a page's first run a widget starts from ``st.query_params`` (or its default), and
every run writes the widget's value back. A value from the link that does not parse
falls back to the default with a visible warning that names it; it never raises.

Values are written as text: numbers compactly (``1e6``), lists and ranges comma-joined
(``op=add,sin``, ``size=1e3,1e6``). Repeated keys (``op=add&op=sin``) are read too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from core.errors import BadInput
from core.measure.workloads import Param

Parse = Callable[[str], Any]
_SHOWN_CHARS = 60


# ---------------------------------------------------------------- text forms


def compact(number: float, from_abs: float = 1e4) -> str:
    """30000 -> '3e4', 1000000 -> '1e6', 512 -> '512': short in links and slider labels."""
    if isinstance(number, float) and not number.is_integer():
        return f"{number:g}"
    whole = int(number)
    if abs(whole) >= from_abs:
        digits = str(abs(whole))
        mantissa = digits.rstrip("0")
        if len(mantissa) == 1:
            return f"{'-' if whole < 0 else ''}{mantissa}e{len(digits) - 1}"
    return str(whole)


def short(number: float) -> str:
    """Slider labels for sizes that span decades: 1e3, 3e3, ... 1e9."""
    return compact(number, from_abs=1e3)


def to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple)):
        return ",".join(to_text(v) for v in value)
    if isinstance(value, (int, float)):
        return compact(value)
    return str(value)


def decade_stops(low: float, high: float, steps: Sequence[int] = (1, 3)) -> list[int]:
    """1e3, 3e3, 1e4, ... up to ``high``: even spacing on a log axis."""
    stops = []
    exponent = math.floor(math.log10(low))
    while 10**exponent <= high:
        stops += [s * 10**exponent for s in steps if low <= s * 10**exponent <= high]
        exponent += 1
    return stops


def is_decade(number: float) -> bool:
    return number > 0 and math.log10(number).is_integer()


# ---------------------------------------------------------------- parsing


def _shown(raw: str) -> str:
    text = raw if len(raw) <= _SHOWN_CHARS else raw[:_SHOWN_CHARS] + "…"
    return text.replace("`", "'")


def _raw(name: str) -> str | None:
    values = st.query_params.get_all(name)
    return ",".join(values) if values else None


def _tokens(raw: str) -> list[str]:
    return [t.strip() for t in raw.split(",") if t.strip()]


def _nearest(value: Any, options: Sequence[Any]) -> Any:
    """The option closest to ``value``, in log space where every number is positive."""
    if value in options:
        return value
    if not isinstance(value, (int, float)) or not all(isinstance(o, (int, float)) for o in options):
        raise BadInput(f"'{value}' is not offered; choose from {', '.join(map(str, options))}")
    if value > 0 and all(o > 0 for o in options):
        return min(options, key=lambda o: abs(math.log(o) - math.log(value)))
    return min(options, key=lambda o: abs(o - value))


Read = Callable[[str, list[str]], Any]


_KEPT = "query.kept_values"


def _initial(key: str, name: str, default: Any, read: Read, where) -> Any:
    """The widget's value so far, or on a first run the link's value, or the default.

    Passed to the widget as its default rather than written to Session State: a widget
    with a key keeps its own state afterwards, and a range select_slider needs the
    default to know that it is a range.

    Streamlit forgets a widget's state on a run that does not draw it, that is on every
    other page, and the link then carries the other page's values. A plain Session State
    entry survives, so each value is kept there too: coming back to a page restores it.
    """
    kept = st.session_state.setdefault(_KEPT, {})
    if key in st.session_state:
        value = st.session_state[key]
    elif key in kept:
        value = kept[key]
    else:
        value = _from_link(name, default, read, where)
    kept[key] = value
    return value


def _from_link(name: str, default: Any, read: Read, where) -> Any:
    """The link's value for ``name``, or the default with a note saying why it was ignored."""
    raw = _raw(name)
    if raw is None:
        return default
    notes: list[str] = []
    value = default
    try:
        value = read(raw, notes)
    except BadInput as error:
        where.warning(
            f"Ignored `{name}={_shown(raw)}` from the link: {error}. "
            f"Using the default, {to_text(default)}."
        )
    for note in notes:
        where.info(note)
    return value


def _write(name: str, value: Any, default: Any = None, omit_default: bool = False) -> None:
    if omit_default and value == default:
        if name in st.query_params:
            del st.query_params[name]
        return
    text = to_text(value)
    if st.query_params.get_all(name) != [text]:
        st.query_params[name] = text


def _parser(parse: Parse | Param | None) -> Parse:
    if isinstance(parse, Param):
        return parse.parse
    if parse is None:
        return str

    def checked(raw: str) -> Any:
        # A plain converter such as int raises ValueError on garbage; links must only
        # ever produce BadInput, which falls back to the default with a note.
        try:
            return parse(raw)
        except (TypeError, ValueError) as error:
            if isinstance(error, BadInput):
                raise
            raise BadInput(f"'{_shown(raw)}' is not an allowed value") from None

    return checked


def _one_of(name: str, raw: str, parse: Parse, options: Sequence[Any], fmt, notes) -> Any:
    value = parse(raw)
    try:
        snapped = _nearest(value, options)
    except BadInput as error:
        raise BadInput(f"{name}: {error}") from None
    if snapped != value:
        notes.append(f"{name}: {fmt(value)} is not offered here; using {fmt(snapped)} instead.")
    return snapped


# ---------------------------------------------------------------- widgets


def choice(
    label: str,
    name: str,
    options: Sequence[Any],
    default: Any,
    *,
    key: str,
    parse: Parse | Param | None = None,
    fmt: Callable[[Any], str] = str,
    widget: str = "selectbox",
    where=st,
    help: str | None = None,
    omit_default: bool = False,
) -> Any:
    """One value from ``options`` as a selectbox, select_slider or radio."""
    options = list(options)
    parse = _parser(parse)

    def read(raw: str, notes: list[str]) -> Any:
        tokens = _tokens(raw)
        if len(tokens) != 1:
            raise BadInput(f"{name}: needs exactly one value")
        return _one_of(name, tokens[0], parse, options, fmt, notes)

    initial = _nearest_or(_initial(key, name, default, read, where), options, default)
    common = {"key": key, "format_func": fmt, "help": help}
    index = options.index(initial)
    if widget == "radio":
        value = where.radio(label, options, index=index, horizontal=True, **common)
    elif widget == "select_slider":
        value = where.select_slider(label, options, value=initial, **common)
    else:
        value = where.selectbox(label, options, index=index, **common)
    _write(name, value, default, omit_default)
    return value


def span(
    label: str,
    name: str,
    options: Sequence[Any],
    default: tuple[Any, Any],
    *,
    key: str,
    parse: Parse | Param | None = None,
    fmt: Callable[[Any], str] = str,
    where=st,
    help: str | None = None,
) -> tuple[Any, Any]:
    """A (low, high) range over ``options`` as a two-handled select_slider."""
    options = list(options)
    parse = _parser(parse)
    if len(options) < 2:
        where.caption(f"{label}: only {fmt(options[0])} is offered here.")
        return options[0], options[0]

    def read(raw: str, notes: list[str]) -> tuple[Any, Any]:
        tokens = _tokens(raw)
        if not 1 <= len(tokens) <= 2:
            raise BadInput(f"{name}: give one value or two (low,high)")
        values = sorted(_one_of(name, t, parse, options, fmt, notes) for t in tokens)
        return values[0], values[-1]

    initial = _initial(key, name, default, read, where)
    if not isinstance(initial, (tuple, list)) or len(initial) != 2:
        initial = default
    low, high = (_nearest_or(v, options, options[0]) for v in initial)
    value = where.select_slider(
        label, options, value=(low, high), key=key, format_func=fmt, help=help
    )
    _write(name, list(value))
    return value


def many(
    label: str,
    name: str,
    options: Sequence[Any],
    default: Sequence[Any],
    *,
    key: str,
    parse: Parse | Param | None = None,
    fmt: Callable[[Any], str] = str,
    where=st,
    help: str | None = None,
) -> list[Any]:
    """Several of ``options`` as a multiselect; bad values in the link are dropped, named."""
    options = list(options)
    parse = _parser(parse)

    def read(raw: str, notes: list[str]) -> list[Any]:
        chosen, bad = [], []
        for token in _tokens(raw):
            try:
                value = parse(token)
            except BadInput as error:
                bad.append(str(error))
                continue
            if value in options and value not in chosen:
                chosen.append(value)
            elif value not in options:
                bad.append(f"{name}: '{_shown(token)}' is not offered here")
        if not chosen:
            raise BadInput("; ".join(bad) or f"{name}: nothing chosen")
        for message in bad:
            notes.append(f"Ignored from the link: {message}.")
        return chosen

    initial = [v for v in _initial(key, name, list(default), read, where) if v in options]
    value = where.multiselect(label, options, default=initial, key=key, format_func=fmt, help=help)
    _write(name, list(value), [], omit_default=True)
    return list(value)


def number(
    label: str,
    name: str,
    low: int,
    high: int,
    default: int,
    *,
    key: str,
    where=st,
    help: str | None = None,
    omit_default: bool = True,
) -> int:
    """A whole number from ``low`` to ``high`` as a slider."""
    param = Param(name, int, default, low=low, high=high)
    initial = _initial(key, name, default, lambda raw, notes: param.parse(raw), where)
    if low == high:
        where.caption(f"{label}: {low}")
        return low
    value = where.slider(label, low, high, min(max(initial, low), high), key=key, help=help)
    _write(name, value, default, omit_default)
    return value


def flag(
    label: str,
    name: str,
    default: bool,
    *,
    key: str,
    widget: str = "checkbox",
    where=st,
    help: str | None = None,
) -> bool:
    """On or off, as a checkbox or toggle; written to the link only when not the default."""

    def read(raw: str, notes: list[str]) -> bool:
        text = raw.strip().lower()
        if text in ("1", "true", "on", "yes"):
            return True
        if text in ("0", "false", "off", "no"):
            return False
        raise BadInput(f"{name}: '{_shown(raw)}' is not on/off; write 1 or 0")

    initial = bool(_initial(key, name, default, read, where))
    factory = where.toggle if widget == "toggle" else where.checkbox
    value = factory(label, initial, key=key, help=help)
    _write(name, value, default, omit_default=True)
    return value


def text(
    label: str,
    name: str,
    default: str,
    *,
    key: str,
    where=st,
    help: str | None = None,
) -> str:
    """Free text, checked by the caller (e.g. a memory size)."""
    initial = _initial(key, name, default, lambda raw, notes: raw.strip(), where)
    value = where.text_input(label, initial, key=key, help=help)
    _write(name, value, default, omit_default=True)
    return value


def _nearest_or(value: Any, options: Sequence[Any], fallback: Any) -> Any:
    try:
        return _nearest(value, options)
    except BadInput:
        return fallback if fallback in options else options[0]


def tabs(name: str, labels: dict[str, str], default: str, *, key: str) -> tuple[str, dict]:
    """Tabs where only the open one runs; the link names it by code (``view=kernels``).

    Returns the open tab's code and every tab's container by code.
    """
    by_label = {label: code for code, label in labels.items()}

    def read(raw: str, notes: list[str]) -> str:
        code = raw.strip().lower()
        if code not in labels:
            raise BadInput(f"{name}: '{_shown(raw)}' is not known; choose from {', '.join(labels)}")
        return labels[code]

    initial = _initial(key, name, labels[default], read, st)
    initial = initial if initial in by_label else labels[default]
    made = st.tabs(list(labels.values()), default=initial, key=key, on_change="rerun")
    made = dict(zip(labels, made, strict=True))
    code = next((c for c, tab in made.items() if tab.open), default)
    _write(name, code)
    return code, made


class Binder:
    """A page's widgets: keys prefixed by the page, values checked by the workload's Params.

    ``name`` is both the link's parameter and, unless ``param`` says otherwise, the
    workload parameter whose ``Param.parse`` checks it.
    """

    def __init__(self, workload, prefix: str):
        self.workload = workload
        self.prefix = prefix

    def _options(self, name: str, param: str | None, kwargs: dict) -> dict:
        kwargs.setdefault("key", f"{self.prefix}.{name}")
        wanted = param or name
        if "parse" not in kwargs and wanted in self.workload.param_names:
            kwargs["parse"] = self.workload.param(wanted)
        return kwargs

    def choice(self, label, name, options, default, param=None, **kwargs) -> Any:
        return choice(label, name, options, default, **self._options(name, param, kwargs))

    def span(self, label, name, options, default, param=None, **kwargs) -> tuple[Any, Any]:
        return span(label, name, options, default, **self._options(name, param, kwargs))

    def many(self, label, name, options, default, param=None, **kwargs) -> list[Any]:
        return many(label, name, options, default, **self._options(name, param, kwargs))
