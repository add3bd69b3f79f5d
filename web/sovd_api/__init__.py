"""Every simulated vehicle as a standard SOVD server (ASAM SOVD / ISO 17978) under
`/vehicles/{vehicle_id}/sovd`, driven through the same command pipeline as `/api/v1`."""
