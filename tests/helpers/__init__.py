"""Set-ups that several test modules share: driving the app, fake servers, fixture copies.

Each module here holds one family; tests import them as ``from helpers.tui import ...`` (the
tests folder is on ``sys.path``, as for ``tui_pilot`` and ``conftest``)."""
