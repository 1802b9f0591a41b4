"""The read API: GET /api/... routes, their query parameters, CSV downloads, OpenAPI and the error shape."""
