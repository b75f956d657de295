"""minidl playground (placeholder until the Playground page lands)."""

import streamlit as st

st.set_page_config(page_title="minidl playground", layout="wide")
st.title("minidl playground")
st.write("A deep-learning mini-framework written with PyTorch tensor operations only.")
