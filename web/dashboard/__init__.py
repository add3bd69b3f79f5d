"""The live dashboard: a single page of static files served by the API server itself."""
