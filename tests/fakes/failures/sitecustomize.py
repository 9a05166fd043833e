"""Failure injection for tests/integration/test_local_failures.py: put this folder on PYTHONPATH and every Python
process imports it at start-up. It acts only in a torchrun rank (``RANK`` is set) and only when asked:

- ``SMLAUNCH_TEST_KILL_RANK=N``: rank N kills itself with SIGKILL, as the kernel's OOM killer would;
- ``SMLAUNCH_TEST_ADDRESS_SPACE_GIB=G``: every rank gets an address-space limit of G GiB (RLIMIT_AS), so an
  allocation beyond it fails at once instead of pressing on the machine's memory.
"""

import os

if os.environ.get("RANK") is not None:
    if os.environ.get("SMLAUNCH_TEST_KILL_RANK") == os.environ["RANK"]:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("SMLAUNCH_TEST_ADDRESS_SPACE_GIB"):
        import resource

        limit = int(float(os.environ["SMLAUNCH_TEST_ADDRESS_SPACE_GIB"]) * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
