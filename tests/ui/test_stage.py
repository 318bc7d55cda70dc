"""Stage mode: the sidebar's switch for talks, bound to the link like every other widget."""

from __future__ import annotations

import json

from apptest_helpers import assert_clean, open_page, texts

from ui import page


def chart_specs(at) -> list[dict]:
    return [json.loads(element.proto.spec) for element in at.get("vega_lite_chart")]


def test_stage_mode_draws_big_fonts_and_folds_the_result_table():
    at = open_page("pages/matmul.py", size="16,32", stage="1")
    assert_clean(at)
    assert at.checkbox(key="stage").value is True
    specs = chart_specs(at)
    assert specs
    for spec in specs:
        assert spec["config"]["axis"]["labelFontSize"] == page.STAGE_FONTS["axis"]["labelFontSize"]
        assert spec["config"]["legend"]["labelFontSize"] >= 18
        assert spec["config"]["title"]["fontSize"] >= 24
    assert len(at.dataframe) == 0, "the result table is not shown on stage"
    assert "On " not in texts(at.caption), "nor the caption under the title"


def test_without_stage_mode_the_page_is_as_before():
    at = open_page("pages/matmul.py", size="16,32")
    assert_clean(at)
    assert at.checkbox(key="stage").value is False
    for spec in chart_specs(at):
        assert "labelFontSize" not in spec.get("config", {}).get("axis", {})
    assert len(at.dataframe) == 1
    assert "On " in texts(at.caption)


def test_stage_keeps_a_legend_placed_below_when_it_enlarges_it():
    import altair as alt
    import pandas as pd

    made = alt.Chart(pd.DataFrame({"x": [1]})).mark_point().encode(x="x:Q")
    staged = page._staged(made.configure_legend(orient="bottom"))
    legend = staged.to_dict()["config"]["legend"]
    assert legend["orient"] == "bottom" and legend["labelFontSize"] >= 18
