"""Built-in plugins, each a package found through the ``noslate.plugins`` entry points."""
