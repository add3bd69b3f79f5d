"""The `sovd-sim` command line. It sits on top of every other package: it parses, builds the
configuration once and calls in."""
