"""Speedup Explorer's engine: devices, timing, workloads, memory guard, sweeps, store, CLI.

Nothing here imports streamlit, so the CLI and the tests run without it.
"""

__version__ = "0.1.0"
