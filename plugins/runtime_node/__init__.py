"""runtime_node: the ``nodejs`` runtime, Node.js worker processes started from
per-function V8 startup snapshots. Author guide: ``docs/runtime-node.md``."""
