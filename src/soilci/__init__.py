"""soilci."""
