"""soil_trainer."""
