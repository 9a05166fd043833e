"""Fake `smdistributed.modelparallel`: only the `torch` submodule (SMP v1's PyTorch API) is provided."""

__version__ = "1.15.0+fake"
