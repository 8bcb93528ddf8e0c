"""The one exception type a user sees.

Every mistake a user can make (an unknown model, an impossible size, a corrupt
file, a bad configuration) is reported as a :class:`CnnzooError` whose message
says what went wrong *and what to do*. It subclasses :class:`ValueError`, so
library users can catch it the usual way, and the command line turns it into a
one-line message and a non-zero exit instead of a traceback.
"""

from __future__ import annotations


class CnnzooError(ValueError):
    """A problem with the user's input, explained in plain words."""
