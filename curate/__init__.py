"""Curation: detect, crop, filter and import faces into the catalog; tag and split them."""
