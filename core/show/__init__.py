"""Showing: charts, crossovers, trust tables and the HTML report, built from tidy rows.

May import ``core.keep`` and ``core.measure``; nothing below imports this.
"""
