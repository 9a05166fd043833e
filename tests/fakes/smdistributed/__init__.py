"""Test fake of the `smdistributed` package (SageMaker's model-parallel library ships only inside its DLCs).

Put `tests/fakes` on PYTHONPATH to use it; see `smdistributed/modelparallel/torch/__init__.py` for what is faithful.
"""
