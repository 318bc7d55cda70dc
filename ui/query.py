"""Widgets whose values live in the URL, so that a link reproduces a view (for talks).

Streamlit does the work itself (1.55+): ``bind="query-params"`` keeps a widget's value in
the URL under its key, and ``persist_state="session"`` keeps it across pages. This thin
layer adds what Streamlit does not do. Streamlit drops a link value it cannot use
without a word; here, on a widget's first run, the link's value is read the way a
person wrote it (``size=1e3,5e3``, ``cold=1``, ``view=kernels``), snapped to the nearest
stop when it falls between stops, and a note says what was snapped or ignored. Options
that change (sizes that fit the memory budget) snap the kept value too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import streamlit as st

from core import units
from core.errors import BadInput
from core.measure.workloads import Param

KEEP = {"bind": "query-params", "persist_state": "session"}
_ON, _OFF = ("1", "true", "on", "yes"), ("0", "false", "off", "no")


def _shown(raw: str) -> str:
    return units.echo(raw).replace("`", "'")  # a backtick would end the note's code span


def _nearest(value: Any, options: Sequence[Any]) -> Any:
    """The option closest to ``value``, in log space where every number is positive."""
    if value in options:
        return value
    if not isinstance(value, (int, float)) or not all(isinstance(o, (int, float)) for o in options):
        raise BadInput(f"'{value}' is not offered; choose from {', '.join(map(str, options))}")
    if value > 0 and all(o > 0 for o in options):
        return min(options, key=lambda o: abs(math.log(o) - math.log(value)))
    return min(options, key=lambda o: abs(o - value))


def _nearest_or(value: Any, options: Sequence[Any], fallback: Any) -> Any:
    try:
        return _nearest(value, options)
    except BadInput:
        return fallback if fallback in options else options[0]


def _from_link(key: str, read, as_link: Callable[[Any], list[str]], default: str, where) -> None:
    """On the widget's first run in this session, take the link's value where Streamlit
    would drop it, or say why it was ignored. ``read(tokens, notes)`` parses the link."""
    raw = st.query_params.get_all(key)
    if key in st.session_state or not raw:
        return
    notes: list[str] = []
    try:
        value = read([t.strip() for v in raw for t in v.split(",") if t.strip()], notes)
    except BadInput as error:
        where.warning(
            f"Ignored `{key}={_shown(','.join(raw))}` from the link: {units.echo(error, 200)}. "
            f"Using the default, {default}."
        )
        return
    for note in notes:
        where.info(note)
    if as_link(value) != raw:
        st.session_state[key] = value


def _options_widget(make, key, options, default, param, fmt, where, counts, fit) -> Any:
    """What choice, span and many share: read the link's tokens as options (as Streamlit
    writes them, ``1e3``, or as ``param`` reads them), snap numbers to the nearest option,
    drop what is not offered with a note, and ``fit`` the kept value to changed options.
    ``counts`` is how many values it takes."""
    shown = {fmt(o): o for o in options}
    convert = param.parse if isinstance(param, Param) else (param or str)
    many = counts[1] is None

    def read(tokens: list[str], notes: list[str]) -> Any:
        low, high = counts
        if not tokens:
            raise BadInput(f"{key}: no value given")
        if not low <= len(tokens) <= (high or len(tokens)):
            raise BadInput(f"{key}: give {'one value' if high == 1 else 'one value or two'}")
        values, bad = [], []
        for token in tokens:
            try:
                value = shown[token] if token in shown else convert(token)
                snapped = _nearest(value, options)
            except (TypeError, ValueError) as error:  # BadInput is a ValueError
                if not many:  # a Param's message already names the key and the value
                    why = f"{key}: '{_shown(token)}' is not an allowed value"
                    raise BadInput(str(error) if isinstance(error, BadInput) else why) from None
                bad.append(f"{key}: '{_shown(token)}' is not offered here")
                continue
            if snapped != value:
                notes.append(f"{key}: {fmt(value)} is not offered here; using {fmt(snapped)}.")
            values.append(snapped)
        if not values:
            raise BadInput("; ".join(bad))
        notes += [f"Ignored from the link: {message}." for message in bad]
        if many:
            return list(dict.fromkeys(values))
        return values[0] if high == 1 else (min(values), max(values))

    as_link = (lambda v: [fmt(x) for x in v]) if counts != (1, 1) else (lambda v: [fmt(v)])
    as_text = ", ".join(map(fmt, default)) if counts != (1, 1) else fmt(default)
    _from_link(key, read, as_link, as_text, where)
    if key in st.session_state and fit(st.session_state[key]) != st.session_state[key]:
        st.session_state[key] = fit(st.session_state[key])
    return make(key=key, format_func=fmt, **KEEP)


def choice(
    label, key, options, default, *, param=None, fmt=str, widget="selectbox", where=st, help=None
) -> Any:
    """One value from ``options`` as a selectbox, select_slider or radio."""
    options = list(options)
    default = _nearest_or(default, options, options[0])

    def make(**kw):
        if widget == "select_slider":
            return where.select_slider(label, options, value=default, help=help, **kw)
        kw |= {"horizontal": True} if widget == "radio" else {}
        return getattr(where, widget)(label, options, options.index(default), help=help, **kw)

    return _options_widget(make, key, options, default, param, fmt, where, (1, 1),
                           lambda v: _nearest_or(v, options, default))  # fmt: skip


def span(label, key, options, default, *, param=None, fmt=str, where=st, help=None) -> tuple:
    """A (low, high) range over ``options`` as a two-handled select_slider."""
    options = list(options)
    if len(options) < 2:
        where.caption(f"{label}: only {fmt(options[0])} is offered here.")
        return options[0], options[0]
    low, high = sorted(_nearest_or(v, options, options[0]) for v in default)

    def make(**kw):
        return where.select_slider(label, options, value=(low, high), help=help, **kw)

    def fit(pair) -> tuple:
        return tuple(sorted(_nearest_or(x, options, low) for x in pair))

    return _options_widget(make, key, options, (low, high), param, fmt, where, (1, 2), fit)


def many(label, key, options, default, *, param=None, fmt=str, where=st, help=None) -> list:
    """Several of ``options`` as a multiselect; bad values in the link are dropped, named."""
    options = list(options)
    default = [v for v in default if v in options]

    def make(**kw):
        return list(where.multiselect(label, options, default=default, help=help, **kw))

    return _options_widget(make, key, options, default, param, fmt, where, (1, None),
                           lambda v: [x for x in v if x in options])  # fmt: skip


def number(label, key, low: int, high: int, default: int, *, where=st, help=None) -> int:
    """A whole number from ``low`` to ``high`` as a slider."""
    if low == high:
        where.caption(f"{label}: {low}")
        return low
    param, default = Param(key, int, default, low=low, high=high), min(max(default, low), high)
    _from_link(key, lambda tokens, _: param.parse(",".join(tokens)), lambda v: [str(v)],
               str(default), where)  # fmt: skip
    if key in st.session_state and not low <= st.session_state[key] <= high:
        st.session_state[key] = min(max(st.session_state[key], low), high)
    return where.slider(label, low, high, default, key=key, help=help, **KEEP)


def flag(label, key, default: bool, *, where=st, help=None) -> bool:
    """On or off, as a checkbox."""

    def read(tokens: list[str], _) -> bool:
        text = ",".join(tokens).lower()
        if text not in _ON + _OFF:
            raise BadInput(f"{key}: '{_shown(text)}' is not on/off; write 1 or 0")
        return text in _ON

    _from_link(key, read, lambda v: [str(v).lower()], "on" if default else "off", where)
    return where.checkbox(label, default, key=key, help=help, **KEEP)


def tabs(key: str, labels: dict[str, str], default: str) -> tuple[str, dict]:
    """Tabs where only the open one runs; a link may name one by code (``view=kernels``).
    Returns the open tab's code and every tab's container by code."""

    def read(tokens: list[str], _) -> str:
        code = ",".join(tokens).lower()
        found = labels.get(code) or next((v for v in labels.values() if v.lower() == code), None)
        if found is None:
            raise BadInput(f"{key}: '{_shown(code)}' is not known; choose from {', '.join(labels)}")
        return found

    _from_link(key, read, lambda v: [v], labels[default], st)
    made = st.tabs(list(labels.values()), default=labels[default], key=key, on_change="rerun",
                   bind="query-params")  # fmt: skip
    made = dict(zip(labels, made, strict=True))
    return next((c for c, tab in made.items() if tab.open), default), made


def binder(workload) -> SimpleNamespace:
    """A page's widgets, each checked by the workload parameter it sets: ``q.many(label,
    name, options, default, param=None)``, where ``name`` is the link's key and, unless
    ``param`` names another, the parameter."""

    def bound(widget):
        def made(label, name, options, default, param=None, **kwargs):
            if (param or name) in workload.param_names:
                kwargs.setdefault("param", workload.param(param or name))
            return widget(label, name, options, default, **kwargs)

        return made

    return SimpleNamespace(choice=bound(choice), span=bound(span), many=bound(many))
