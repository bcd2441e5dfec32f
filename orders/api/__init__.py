"""REST API of the orders app (mounted under /api/v1/ by o2o.api_urls)."""
