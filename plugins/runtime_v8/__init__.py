"""runtime_v8: the ``aworker`` JavaScript runtime on embedded V8 (STPyV8).

``worker.load``/``worker.serve`` run functions; ``prepare`` transforms code at deploy
time; ``plugin`` registers the runtime. Docs: ``docs/runtime.md``.
"""
