"""The load generator behind `sovd-sim loadtest`: a client of the HTTP API that imports
nothing of the server, so it measures the server only from the outside."""
