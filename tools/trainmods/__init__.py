"""Per-model training specs for tools/train.py: one module per model, each defining `Spec`."""
