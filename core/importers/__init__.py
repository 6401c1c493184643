"""One module per source kind; :mod:`mltop.core.importers.registry` lists them in walk order."""
