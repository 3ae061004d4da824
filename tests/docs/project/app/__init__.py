"""The project the docs' commands run against (`app.graphs:graph`)."""
