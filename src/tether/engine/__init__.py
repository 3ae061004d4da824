"""The superstep engine: plan tasks, run them together, commit their writes at once."""
