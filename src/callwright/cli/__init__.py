"""The ``callwright`` command."""
