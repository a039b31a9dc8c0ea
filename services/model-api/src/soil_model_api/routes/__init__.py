"""HTTP routes: predict, model info, health and metrics."""
