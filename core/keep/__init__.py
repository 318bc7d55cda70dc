"""Keeping: the result schema, files, the store, the recorder and the post's figures.

Never imports ``core.show``, nor torch: from ``core.measure`` only its torch-free parts
(the workload registry). tests/test_layout.py checks both.
"""
