"""The machine fingerprint stored with every run and exported with every file."""

import json

from core.measure import devices


def test_machine_fingerprint_describes_this_machine():
    fingerprint = devices.machine_fingerprint()
    for key in (
        "os",
        "cpu_model",
        "cpu_cores_physical",
        "cpu_cores_logical",
        "ram_bytes",
        "torch",
        "torch_threads",
        "machine",
    ):
        assert fingerprint[key], key
    # With no devices given it describes this machine, accelerator and all.
    assert (fingerprint["accelerator"] is None) == (devices.accelerator_type() is None)
    assert fingerprint["machine"] == devices.machine_label()
    json.dumps(fingerprint)  # it is stored and exported as JSON


def test_machine_fingerprint_names_the_accelerator():
    gpu = {
        "device": "cuda:0",
        "kind": "cuda",
        "name": "NVIDIA H100 80GB HBM3",
        "total_memory_bytes": 80 * 1024**3,
    }
    cpu = {"device": "cpu", "kind": "cpu", "name": "Intel(R) Xeon(R) Platinum 8480+"}
    for info in (gpu, [cpu, gpu], {"cpu": cpu, "cuda:0": gpu}):
        fingerprint = devices.machine_fingerprint(info)
        assert fingerprint["accelerator"] == "NVIDIA H100 80GB HBM3"
        assert fingerprint["accelerator_type"] == "cuda"
        assert fingerprint["machine"].startswith("NVIDIA H100 80GB HBM3 + ")
    assert devices.machine_fingerprint(cpu)["accelerator"] is None
    assert devices.short_cpu_name("Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.00GHz") == (
        "Intel Xeon Platinum 8480+"
    )
    assert devices.short_cpu_name("AMD Ryzen AI 9 HX 370 w/ Radeon 890M") == (
        "AMD Ryzen AI 9 HX 370 w/ Radeon 890M"
    )
