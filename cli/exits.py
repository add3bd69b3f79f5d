"""Exit codes of every `sovd-sim` command, and the error that means misuse."""

EXIT_OK = 0
# The request was understood but could not be carried out: the database is unreachable or
# its schema outdated, a name is taken.
EXIT_FAILED = 1
# Misuse: bad flags, configuration or input, the way argparse exits on a bad command line.
EXIT_USAGE = 2


class CliUsageError(Exception):
    """Misuse found after parsing (a missing setting, say); main() prints it and exits 2."""
