#!/usr/bin/env bash
# The accelerator check on a lent GPU machine (its Python has torch with CUDA but no
# Streamlit), in two parts that each fit one call:
#   bench/device_check.sh tests   the test suite on cuda, AppTest included (no browser, no PostgreSQL)
#   bench/device_check.sh new     variants, attention, energy and will-it-fit on cuda, and
#                                 the tests of those parts
#   bench/device_check.sh bench   the self-test, the fidelity run against do_bench and Timer,
#                                 then the post's suite under a whole-run budget
#                                 (SUITE_BUDGET_S, default 60)
# Wheels for Streamlit and the store travel in .whl/ (see shared/GUIDE.md). Logs go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/device-check}"
mkdir -p "$OUT"
pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/site SPEEDUP_EXPLORER_STORE="sqlite:////tmp/device-check.sqlite"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$OUT/gpu.txt"
if [ "${1:-tests}" = new ]; then
    # What issue 12 added: variants, attention beside do_bench, energy, will-it-fit, and
    # the new tests on cuda. Each step is capped so that one call fits the device's limit.
    run() { name=$1; shift; SECONDS=0; timeout "$CAP" "$@" >"$OUT/$name.log" 2>&1
            echo "$name: exit $?, ${SECONDS} s" | tee -a "$OUT/summary.txt"; }
    CAP=${CAP_VARIANTS:-300} run variants python bench/variants.py --out "$OUT"
    CAP=${CAP_ATTENTION:-120} run attention python bench/attention.py --out "$OUT"
    CAP=${CAP_ENERGY:-60} run energy python bench/energy.py --out "$OUT"
    CAP=${CAP_FIT:-90} run fit python bench/fit.py --out "$OUT" --device cuda
    CAP=${CAP_TESTS:-120} run new-tests python -m pytest -q -p no:cacheprovider \
        tests/measure/test_variants.py tests/measure/test_attention.py tests/measure/test_ops.py \
        tests/measure/test_fit.py tests/measure/test_energy.py tests/measure/test_machine_state.py
elif [ "${1:-tests}" = tests ]; then
    python -m pytest -q -p no:cacheprovider tests --ignore=tests/ui/test_browser.py \
        --ignore=tests/ui/test_browser_report.py >"$OUT/tests.log" 2>&1
    echo "tests: exit $?; $(tail -1 "$OUT/tests.log")" | tee -a "$OUT/summary.txt"
else
    python -m core selftest --out "$OUT/selftest.json" >"$OUT/selftest.log" 2>&1
    echo "selftest: exit $?" | tee -a "$OUT/summary.txt"
    python bench/fidelity.py --out "$OUT" >"$OUT/fidelity.log" 2>&1
    echo "fidelity: exit $?" | tee -a "$OUT/summary.txt"
    budget_s="${SUITE_BUDGET_S:-60}"
    SECONDS=0
    python -m core suite post --budget-s "$budget_s" --point-budget-s 0.5 --devices cpu,accel \
        --no-store --out "$OUT/post.csv" >"$OUT/suite.log" 2>&1
    echo "suite post --budget-s $budget_s: exit $?, wall ${SECONDS} s" | tee -a "$OUT/summary.txt"
fi
