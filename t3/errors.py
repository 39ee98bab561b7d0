"""The CLI's error contract: bad input -> one line on stderr, exit status 2."""


class UsageError(Exception):
    """A bad command-line argument or input file; the message is one line."""
