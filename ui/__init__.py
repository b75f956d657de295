"""The app's helpers beside ``streamlit_app.py``: UI state without Streamlit (``playground``)
and widgets shared by pages (``jobs``).  A package outside ``pages/``, so that
Streamlit's router never mistakes a helper for a page."""
