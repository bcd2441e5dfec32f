"""REST API of the members app (mounted under /api/v1/ by o2o.api_urls)."""
