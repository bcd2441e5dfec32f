"""REST API of the inventory app (mounted under /api/v1/ by o2o.api_urls)."""
