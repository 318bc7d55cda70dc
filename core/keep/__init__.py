"""Keeping: the result schema, files, the store, the recorder and the post's figures.

Imports neither ``core.measure`` nor ``core.show``, and never torch.
"""
