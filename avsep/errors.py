"""The one exception type that the CLI turns into a one-line message."""


class AvsepError(Exception):
    """A user-facing error: bad input, a missing file, an impossible option.

    The CLI prints ``avsep: error: <message>`` and exits with status 2, without a traceback,
    so the message must name the file or argument and say what is wrong with it.
    """
