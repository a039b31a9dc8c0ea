"""soil_model_api."""
