"""HTTP layer: routers per resource, auth, error format, schemas."""
