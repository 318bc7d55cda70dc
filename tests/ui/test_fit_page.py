"""The Will-it-fit page through AppTest: the presets' table before anything runs, the
measured peak beside the estimate on a button, and bad combinations in one line."""

from __future__ import annotations

from core.measure import fit
from tests.ui.apptest_helpers import assert_clean, open_page, texts

PAGE = "pages/fit.py"
TINY = {"fit_model": "mobilenet_v3_small", "fit_batch": "2", "fit_px": "64"}


def _table(at):
    return at.dataframe[0].value


def test_the_table_names_every_preset_and_what_fits():
    at = open_page(PAGE, **TINY)
    assert_clean(at)
    assert at.title[0].value == "Will it fit?"
    table = _table(at)
    assert list(table["machine"]) == [p.name for p in fit.presets()]
    assert set(table["fits"]) == {"yes"}  # a tiny model fits everywhere
    assert {"needed", "usable", "largest batch", "usable is"} <= set(table.columns)
    need = fit.estimate("mobilenet_v3_small", 2, 64, "float32", False)
    assert set(table["needed"]) == {fit.units.bytes_si(need)}


def test_the_button_measures_the_peak_and_shows_the_estimates_error():
    at = open_page(PAGE, **TINY)
    at.selectbox(key="fit.device").set_value("cpu").run()
    at.button(key="fit.measure").click().run()
    assert_clean(at)
    labels = [m.label for m in at.metric]
    assert {"Measured peak", "Estimate", "Estimate / measured"} <= set(labels)
    ratio = next(m.value for m in at.metric if m.label == "Estimate / measured")
    assert ratio.endswith("×") and float(ratio[:-1]) >= 1
    assert "the measured peak" in texts(at.success)
    assert "profiler" in texts(at.caption)


def test_a_vit_image_size_is_snapped_to_its_patch_in_one_line():
    at = open_page(PAGE, fit_model="vit_b_32", fit_batch="1", fit_px="48")
    assert_clean(at)
    assert "vit_b_32 takes images in multiples of its patch: using 64 px." in texts(at.info)
    assert len(_table(at)) == len(fit.presets())


def test_a_combination_that_cannot_run_is_one_line():
    # inception_v3's pooling needs at least 75 px.
    at = open_page(PAGE, fit_model="inception_v3", fit_batch="1", fit_px="32")
    assert_clean(at)
    assert len(at.error) == 1 and "inception_v3 at 32 px" in at.error[0].value
    assert not at.dataframe
