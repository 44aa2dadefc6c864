"""The Streamlit labelling app over the catalog."""
