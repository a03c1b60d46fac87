"""Statistics, tables, figures and event displays of an evaluation."""
