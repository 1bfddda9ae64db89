"""Test-only plugins for the kernel tests: a runtime ``pytest`` whose workers run Python.

Not part of the product. The tests put this directory on ``PYTHONPATH`` so the
``noslate.plugins`` entry point in the ``.dist-info`` next to it is discovered.
"""
