"""The published API description: `/openapi.json` (OpenAPI 3.1) and a readable `/docs` page,
built from the wire models the routes validate with (api/wire/)."""
