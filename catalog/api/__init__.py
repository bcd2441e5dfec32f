"""REST API of the catalog app (mounted under /api/v1/ by o2o.api_urls)."""
