"""soil_model_api: serves one registered soil-spectroscopy model over HTTP."""
