"""Measuring: devices, timing, the memory guard, ceilings, locks, workloads and the sweep.

Imports neither ``core.keep`` nor ``core.show``: it makes rows, which the keeping stage
turns into the tidy table. tests/test_layout.py checks it.
"""
