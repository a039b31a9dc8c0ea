"""soil_drift."""
