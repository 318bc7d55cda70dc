"""Measuring: devices, timing, the memory guard, ceilings, locks, workloads and the sweep.
It imports neither ``core.keep`` nor ``core.show`` (tests/test_layout.py checks it): it makes
rows, which the keeping stage turns into the tidy table."""
