"""tether's benchmark suite: each workload timed on tether and on LangGraph in one run.

Run `python -m bench` (see `python -m bench --help`); DESIGN.md §7 holds the goals.
"""
