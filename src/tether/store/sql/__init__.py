"""The SQL stores' shared core: their statements per database dialect, and their operations
written once (`ops.py`) for a driver per database to run."""
