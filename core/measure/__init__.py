"""Measuring: devices, timing, the memory guard, ceilings, locks, workloads and the sweep.

Imports ``core.keep`` (rows are written in its schema), never ``core.show``.
"""
