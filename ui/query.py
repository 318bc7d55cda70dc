"""Widgets whose values live in the URL, so that a link reproduces a view (for talks).

Streamlit does the work itself (1.55+): ``bind="query-params"`` keeps a widget's value in
the URL under its key, and ``persist_state="session"`` keeps it across pages. What this
thin layer adds is what Streamlit does not do. Streamlit drops a link value it cannot
use without a word; here, on a widget's first run, the link's value is read the way a
person wrote it (``size=1e3,5e3``, ``cold=1``, ``view=kernels``), snapped to the
nearest stop of a log scale when it falls between stops, and a note says what was
snapped or ignored. Options that change (sizes that fit the memory budget) snap the
kept value too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from core import units
from core.errors import BadInput
from core.measure.workloads import Param

KEEP = {"bind": "query-params", "persist_state": "session"}
_SHOWN_CHARS = 60


def short(number: float) -> str:
    """Slider labels for sizes that span decades: 1e3, 3e3, ... 1e9."""
    return units.compact(number, from_abs=1e3)


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


def _nearest(value: Any, options: Sequence[Any]) -> Any:
    """The option closest to ``value``, in log space where every number is positive."""
    if value in options:
        return value
    numbers = isinstance(value, (int, float)) and all(isinstance(o, (int, float)) for o in options)
    if not numbers:
        raise BadInput(f"'{value}' is not offered; choose from {', '.join(map(str, options))}")
    if value > 0 and all(o > 0 for o in options):
        return min(options, key=lambda o: abs(math.log(o) - math.log(value)))
    return min(options, key=lambda o: abs(o - value))


def _parser(param, options: Sequence[Any], fmt) -> Callable[[str], Any]:
    """A link token as a value: an option as Streamlit writes it (``1e3``), or as the
    workload's ``Param`` (or a plain converter such as ``int``) reads it."""
    shown = {fmt(o): o for o in options}
    convert = param.parse if isinstance(param, Param) else (param or str)

    def parse(raw: str) -> Any:
        if raw in shown:
            return shown[raw]
        # A plain converter raises ValueError on garbage; links must only ever produce
        # BadInput, which falls back to the default with a note.
        try:
            return convert(raw)
        except (TypeError, ValueError) as error:
            if isinstance(error, BadInput):
                raise
            raise BadInput(f"'{_shown(raw)}' is not an allowed value") from None

    return parse


def _shown(raw: str) -> str:
    text = raw if len(raw) <= _SHOWN_CHARS else raw[:_SHOWN_CHARS] + "…"
    return text.replace("`", "'")


def _snap(key: str, value: Any, options: Sequence[Any], fmt, notes: list[str]) -> Any:
    try:
        snapped = _nearest(value, options)
    except BadInput as error:
        raise BadInput(f"{key}: {error}") from None
    if snapped != value:
        notes.append(f"{key}: {fmt(value)} is not offered here; using {fmt(snapped)} instead.")
    return snapped


def _from_link(key: str, read, as_link: Callable[[Any], list[str]], default: str, where) -> None:
    """On the widget's first run in this session, take the link's value where Streamlit
    would drop it, or say why it was ignored."""
    raw = st.query_params.get_all(key)
    if key in st.session_state or not raw:
        return
    tokens = [t.strip() for value in raw for t in value.split(",") if t.strip()]
    notes: list[str] = []
    try:
        value = read(tokens, notes)
    except BadInput as error:
        where.warning(
            f"Ignored `{key}={_shown(','.join(raw))}` from the link: {error}. "
            f"Using the default, {default}."
        )
        return
    for note in notes:
        where.info(note)
    if as_link(value) != raw:
        st.session_state[key] = value


def _refit(key: str, fits: Callable[[Any], bool], fixed: Callable[[Any], Any]) -> None:
    """A kept value that the options no longer offer moves to the nearest one."""
    if key in st.session_state and not fits(st.session_state[key]):
        st.session_state[key] = fixed(st.session_state[key])


def _nearest_or(value: Any, options: Sequence[Any], fallback: Any) -> Any:
    try:
        return _nearest(value, options)
    except BadInput:
        return fallback if fallback in options else options[0]


# ---------------------------------------------------------------- widgets


def choice(
    label: str,
    key: str,
    options: Sequence[Any],
    default: Any,
    *,
    param: Param | Callable[[str], Any] | None = None,
    fmt: Callable[[Any], str] = str,
    widget: str = "selectbox",
    where=st,
    help: str | None = None,
) -> Any:
    """One value from ``options`` as a selectbox, select_slider or radio."""
    options = list(options)
    parse = _parser(param, options, fmt)
    default = _nearest_or(default, options, options[0])

    def read(tokens: list[str], notes: list[str]) -> Any:
        if len(tokens) != 1:
            raise BadInput(f"{key}: needs exactly one value")
        return _snap(key, parse(tokens[0]), options, fmt, notes)

    _from_link(key, read, lambda v: [fmt(v)], fmt(default), where)
    _refit(key, lambda v: v in options, lambda v: _nearest_or(v, options, default))
    common = {"key": key, "format_func": fmt, "help": help, **KEEP}
    if widget == "select_slider":
        return where.select_slider(label, options, value=default, **common)
    index = options.index(default)
    if widget == "radio":
        return where.radio(label, options, index=index, horizontal=True, **common)
    return where.selectbox(label, options, index=index, **common)


def span(
    label: str,
    key: str,
    options: Sequence[Any],
    default: tuple[Any, Any],
    *,
    param: Param | Callable[[str], Any] | None = None,
    fmt: Callable[[Any], str] = str,
    where=st,
    help: str | None = None,
) -> tuple[Any, Any]:
    """A (low, high) range over ``options`` as a two-handled select_slider."""
    options = list(options)
    parse = _parser(param, options, fmt)
    if len(options) < 2:
        where.caption(f"{label}: only {fmt(options[0])} is offered here.")
        return options[0], options[0]

    def snapped(pair) -> tuple[Any, Any]:
        low, high = sorted(_nearest_or(v, options, options[0]) for v in pair)
        return low, high

    def read(tokens: list[str], notes: list[str]) -> tuple[Any, Any]:
        if not 1 <= len(tokens) <= 2:
            raise BadInput(f"{key}: give one value or two (low,high)")
        values = sorted(_snap(key, parse(t), options, fmt, notes) for t in tokens)
        return values[0], values[-1]

    default = snapped(default)
    _from_link(key, read, lambda v: [fmt(x) for x in v], f"{fmt(default[0])}–{fmt(default[1])}",
               where)  # fmt: skip
    _refit(key, lambda v: all(x in options for x in v), snapped)
    return where.select_slider(
        label, options, value=default, key=key, format_func=fmt, help=help, **KEEP
    )


def many(
    label: str,
    key: str,
    options: Sequence[Any],
    default: Sequence[Any],
    *,
    param: Param | Callable[[str], Any] | None = None,
    fmt: Callable[[Any], str] = str,
    where=st,
    help: str | None = None,
) -> list[Any]:
    """Several of ``options`` as a multiselect; bad values in the link are dropped, named."""
    options = list(options)
    parse = _parser(param, options, fmt)

    def read(tokens: list[str], notes: list[str]) -> list[Any]:
        chosen, bad = [], []
        for token in tokens:
            try:
                value = parse(token)
            except BadInput as error:
                bad.append(str(error))
                continue
            if value not in options:
                bad.append(f"{key}: '{_shown(token)}' is not offered here")
            elif value not in chosen:
                chosen.append(value)
        if not chosen:
            raise BadInput("; ".join(bad) or f"{key}: nothing chosen")
        notes += [f"Ignored from the link: {message}." for message in bad]
        return chosen

    default = [v for v in default if v in options]
    _from_link(key, read, lambda v: [fmt(x) for x in v], ", ".join(map(fmt, default)), where)
    _refit(key, lambda v: all(x in options for x in v), lambda v: [x for x in v if x in options])
    return list(
        where.multiselect(
            label, options, default=default, key=key, format_func=fmt, help=help, **KEEP
        )
    )


def number(
    label: str, key: str, low: int, high: int, default: int, *, where=st, help: str | None = None
) -> int:
    """A whole number from ``low`` to ``high`` as a slider."""
    if low == high:
        where.caption(f"{label}: {low}")
        return low
    param = Param(key, int, default, low=low, high=high)
    default = min(max(default, low), high)
    _from_link(key, lambda tokens, notes: param.parse(",".join(tokens)), lambda v: [str(v)],
               str(default), where)  # fmt: skip
    _refit(key, lambda v: low <= v <= high, lambda v: min(max(v, low), high))
    return where.slider(label, low, high, default, key=key, help=help, **KEEP)


_ON, _OFF = ("1", "true", "on", "yes"), ("0", "false", "off", "no")


def flag(
    label: str, key: str, default: bool, *, widget: str = "checkbox", where=st, help=None
) -> bool:
    """On or off, as a checkbox or toggle."""

    def read(tokens: list[str], notes: list[str]) -> bool:
        text = ",".join(tokens).lower()
        if text in _ON or text in _OFF:
            return text in _ON
        raise BadInput(f"{key}: '{_shown(text)}' is not on/off; write 1 or 0")

    _from_link(key, read, lambda v: [str(v).lower()], "on" if default else "off", where)
    factory = where.toggle if widget == "toggle" else where.checkbox
    return factory(label, default, key=key, help=help, **KEEP)


def text(label: str, key: str, default: str, *, where=st, help: str | None = None) -> str:
    """Free text, checked by the caller (e.g. a memory size); Streamlit keeps any text."""
    return where.text_input(label, default, key=key, help=help, **KEEP)


def tabs(key: str, labels: dict[str, str], default: str) -> tuple[str, dict]:
    """Tabs where only the open one runs; a link may name one by code (``view=kernels``).

    Returns the open tab's code and every tab's container by code.
    """

    def read(tokens: list[str], notes: list[str]) -> str:
        code = ",".join(tokens).lower()
        found = labels.get(code) or next((v for v in labels.values() if v.lower() == code), None)
        if found is None:
            raise BadInput(f"{key}: '{_shown(code)}' is not known; choose from {', '.join(labels)}")
        return found

    _from_link(key, read, lambda v: [v], labels[default], st)
    made = st.tabs(
        list(labels.values()), default=labels[default], key=key, on_change="rerun",
        bind="query-params",
    )  # fmt: skip
    made = dict(zip(labels, made, strict=True))
    return next((c for c, tab in made.items() if tab.open), default), made


class Binder:
    """A page's widgets, each checked by the workload parameter it sets: ``name`` is the
    link's key and, unless ``param`` names another, the parameter."""

    def __init__(self, workload):
        self.workload = workload

    def _param(self, name: str, param: str | None, kwargs: dict) -> dict:
        wanted = param or name
        if "param" not in kwargs and wanted in self.workload.param_names:
            kwargs["param"] = self.workload.param(wanted)
        return kwargs

    def choice(self, label, name, options, default, param=None, **kwargs) -> Any:
        return choice(label, name, options, default, **self._param(name, param, kwargs))

    def span(self, label, name, options, default, param=None, **kwargs) -> tuple[Any, Any]:
        return span(label, name, options, default, **self._param(name, param, kwargs))

    def many(self, label, name, options, default, param=None, **kwargs) -> list[Any]:
        return many(label, name, options, default, **self._param(name, param, kwargs))
