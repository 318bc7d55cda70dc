"""The thin Streamlit layer over ``core``: sidebar, URL state, the runner and page helpers.

Nothing here imports torch; measuring is ``core``'s job.
"""
