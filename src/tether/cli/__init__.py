"""The `tether` command line (typer + rich): run graphs with live progress and graceful Ctrl-C,
inspect, cancel and resume recorded runs, serve graphs, and a demo. Needs the `cli` extra."""
