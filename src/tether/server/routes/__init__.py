"""The server's routes, one module per resource: assistants, threads, runs, and tether's own
(the web page and what it calls)."""
