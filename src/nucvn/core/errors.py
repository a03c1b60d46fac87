"""The one exception type for errors a user can cause.

A bad file, a missing key or a wrong parameter raises :class:`NucvnError` with a message that names
the file, key or parameter and says what to do. The command line catches it and prints the message
without a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["NucvnError"]


class NucvnError(ValueError):
    """A problem with the user's input (file, key, parameter), explained in the message."""
