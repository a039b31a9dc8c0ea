"""The PR report: compare this run's benchmark metrics with a base revision, decide, render once."""
