"""Test-only runtime ``isoprobe``: runs deployed *Python* code inside real worker
processes (warmfork seeds and instances, or cold workers) under the sandbox the kernel
and the isolation plugins built, so a test can attempt syscalls from inside a worker.
Not part of the product; tests/isolation_e2e puts this directory on PYTHONPATH.
"""
