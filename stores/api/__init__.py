"""REST API of the stores app (mounted under /api/v1/ by o2o.api_urls)."""
