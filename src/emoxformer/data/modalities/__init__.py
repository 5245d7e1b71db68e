"""The three modalities, one module each; data/registry.py registers them."""
