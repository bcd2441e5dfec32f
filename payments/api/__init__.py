"""REST API of the payments app (mounted under /api/v1/ by o2o.api_urls)."""
