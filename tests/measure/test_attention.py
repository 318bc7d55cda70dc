"""The attention workload at tiny sizes on the CPU: its cost before anything is allocated,
its output against a float64 reference written out by hand, and the kernel it names."""

import pandas as pd
import pytest
import torch

from core.cli import main
from core.errors import BadInput
from core.measure import devices, sweep, workloads
from core.measure.workloads import attention
from core.measure.workloads.base import WORKSPACE_BYTES, relative_error
from tests.helpers import measure_point

W = workloads.get("attention")
CPU = torch.device("cpu")
FAST = sweep.SweepSettings(timing=sweep.timing.TimingSettings(budget_s=0.05))


def _params(**values):
    return W.validate({"seq_len": 32, "heads": 2, "head_dim": 32, **values})


def test_cost_follows_the_formulas_and_bounds_the_math_kernels_scores():
    b, h, s, d = 2, 4, 128, 64
    plain = W.cost(_params(batch=b, heads=h, seq_len=s, head_dim=d), torch.float32)
    assert plain.flops == 4 * b * h * s * s * d
    assert plain.bytes_moved == 4 * b * h * s * d * 4  # q, k, v and the output
    causal = W.cost(_params(batch=b, heads=h, seq_len=s, head_dim=d, causal="yes"), "float32")
    assert causal.flops == 4 * b * h * d * s * (s + 1) / 2  # the scores the mask keeps
    assert causal.bytes_moved == plain.bytes_moved
    # The math kernel's s × s scores, in float32 even for half precision, are in the bound.
    half = W.cost(_params(batch=b, heads=h, seq_len=s, head_dim=d), torch.float16)
    assert half.memory_bytes >= b * h * s * s * 4 * 3 + WORKSPACE_BYTES
    assert half.bytes_moved == plain.bytes_moved / 2


def test_a_point_too_large_for_the_budget_is_refused_before_anything_is_allocated():
    huge = {"seq_len": [65536], "heads": [128], "batch": [256]}
    (task,) = sweep.plan(
        W, huge, [sweep.Backend("cpu", 1)], sweep.SweepSettings(memory_budget_bytes=10**9)
    )
    assert task.cost.memory_bytes > 1e15  # computed, never allocated
    assert task.verdict[0] == "refused"


def test_a_tiny_point_runs_checks_out_and_names_the_cpu_kernel():
    row = measure_point(W, _params(causal="yes"), sweep.Backend("cpu", 1), FAST)
    assert row["status"] == "ok", row["message"]
    assert row["max_rel_err"] < 1e-5
    assert "mismatch" not in row["flags"]
    assert row["implementation"] == "flash (cpu)"
    assert row["flops"] == W.cost(_params(causal="yes"), "float32").flops


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("causal", ["no", "yes"])
def test_the_output_matches_the_written_out_reference(dtype, causal):
    prepared = W.build(_params(causal=causal), CPU, dtype)
    actual, expected = prepared.check()
    assert actual.shape == expected.shape == (2, 32, 32)
    assert relative_error(actual, expected) < workloads.base.TOLERANCE[dtype]
    assert prepared.check_note == ""


def test_causal_differs_and_its_first_query_sees_only_the_first_key():
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 8, 4, dtype=torch.float64) for _ in "qkv")
    masked = attention._reference(q, k, v, causal=True)
    assert torch.allclose(masked[..., 0, :], v[..., 0, :])
    assert not torch.allclose(masked, attention._reference(q, k, v, causal=False))
    no, yes = (W.build(_params(causal=c), CPU, torch.float32).fn() for c in ("no", "yes"))
    assert not torch.allclose(no, yes)


def test_long_sequences_check_a_block_of_query_rows_exactly(monkeypatch):
    monkeypatch.setattr(attention, "CHECK_MAX_SCORES", 32 * 10)  # 10 rows of 32 keys
    prepared = W.build(_params(causal="yes"), CPU, torch.float32)
    actual, expected = prepared.check()
    assert actual.shape == (1, 10, 32)
    assert relative_error(actual, expected) < 1e-5
    assert prepared.check_note == "checked the first 10 of 32 queries of one head"
    monkeypatch.setattr(attention, "CHECK_MAX_SCORES", 32 * 32)  # one whole head of two
    assert W.build(_params(), CPU, torch.float32).check_note == (
        "checked 1 of the 2 heads (batch × heads)"
    )


def test_the_named_kernel_is_the_one_the_profiler_sees_run():
    q, k, v = (torch.randn(1, 2, 16, 8) for _ in "qkv")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        torch.nn.functional.scaled_dot_product_attention(q, k, v)
    ran = {e.name for e in prof.events()}
    named = attention.kernel_name(q, k, v, False)
    expected = {
        "flash (cpu)": "aten::_scaled_dot_product_flash_attention_for_cpu",
        "math": "aten::_scaled_dot_product_attention_math",
    }
    assert expected[named] in ran


def test_no_kernel_is_guessed_where_torch_does_not_say(monkeypatch):
    q = torch.randn(1, 1, 4, 8, device="meta")
    assert attention.kernel_name(q, q, q, False) == ""  # not a CPU or CUDA tensor
    monkeypatch.delattr(torch, "_fused_sdp_choice")
    cpu = torch.randn(1, 1, 4, 8)
    assert attention.kernel_name(cpu, cpu, cpu, False) == ""


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"causal": "maybe"}, "causal: 'maybe' is not known; choose from no, yes"),
        ({"head_dim": 48}, "head_dim: 48 is not allowed; choose from 32, 64, 128, 256"),
        ({"seq_len": 8}, "seq_len: 8 is out of range"),
        ({"heads": "many"}, "heads: 'many' is not a number"),
    ],
)
def test_bad_values_name_the_parameter(values, fragment):
    with pytest.raises(BadInput, match=fragment):
        W.validate(values)


def test_the_cli_runs_attention_and_writes_the_kernel(tmp_path, capsys):
    out = tmp_path / "a.csv"
    args = ["run", "attention", "seq_len=16,32", "heads=1", "causal=yes", "--devices", "cpu"]
    args += ["--threads", "1", "--point-budget-s", "0.05", "--out", str(out)]
    assert main(args) == 0
    frame = pd.read_csv(out)
    assert list(frame["seq_len"]) == [16, 32]
    assert set(frame["status"]) == {"ok"}
    assert set(frame["implementation"]) == {"flash (cpu)"}
    capsys.readouterr()
    assert main(["run", "attention", "causal=maybe"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: causal: 'maybe' is not known; choose from no, yes"
    )


ACCELERATOR = next((d for d in devices.device_strings() if d != "cpu"), None)


@pytest.mark.skipif(ACCELERATOR is None, reason="no accelerator on this machine")
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_on_the_accelerator_the_output_checks_out_and_the_kernel_is_the_one_that_ran(dtype):
    settings = sweep.SweepSettings(dtype=dtype, timing=FAST.timing)
    for causal in ("no", "yes"):
        params = _params(seq_len=256, heads=4, head_dim=64, causal=causal)
        row = measure_point(W, params, sweep.Backend(ACCELERATOR), settings)
        assert row["status"] == "ok", row["message"]
        assert not {"mismatch", "nonfinite"} & set(row["flags"].split(","))
        if not ACCELERATOR.startswith("cuda"):  # torch does not say on MPS
            assert row["implementation"] == ""
            continue
        prepared = W.build(params, torch.device(ACCELERATOR), workloads.parse_dtype(dtype))
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            prepared.fn()
        ran = {e.name for e in prof.events()}
        op = {
            "flash": "aten::_scaled_dot_product_flash_attention",
            "memory-efficient": "aten::_scaled_dot_product_efficient_attention",
            "cudnn": "aten::_scaled_dot_product_cudnn_attention",
            "math": "aten::_scaled_dot_product_attention_math",
        }[row["implementation"]]
        assert op in ran, (row["implementation"], sorted(n for n in ran if "attention" in n))


def test_cuda_is_judged_by_its_fused_kernels_memory_not_the_math_paths():
    from core.measure.workloads import get

    params = get("attention").validate({"batch": 4, "heads": 16, "seq_len": 16384, "head_dim": 128})
    cost = get("attention").cost(params, "float16")
    tensors = 4 * 4 * 16 * 16384 * 128 * 2  # q, k, v and the output: what an H200 held
    assert cost.memory_for("cuda") >= tensors
    assert cost.memory_for("cuda") < cost.memory_for("cpu") / 50
    assert cost.memory_for("mps") == cost.memory_bytes  # MPS may run the math path
