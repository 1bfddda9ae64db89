"""The noslate kernel: a small trio daemon that finds every capability in plugins."""

__version__ = "0.1.0"
