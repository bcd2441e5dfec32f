"""The partner API under /api/v1/: every app's api/urls.py, the OpenAPI schema, Swagger UI and ReDoc.

Any other path under /api/v1/ answers the API's JSON 404 (never the HTML page).
"""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from o2o.api import api_not_found

app_name = "api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[],
                                               throttle_classes=[]), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema", authentication_classes=[],
                                                 permission_classes=[], throttle_classes=[]), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema", template_name="api/redoc.html",
                                                authentication_classes=[],
                                                permission_classes=[], throttle_classes=[]), name="redoc"),
    path("", include("catalog.api.urls")),
    path("", include("stores.api.urls")),
    path("", include("inventory.api.urls")),
    path("", include("orders.api.urls")),
    path("", include("members.api.urls")),
    path("", include("payments.api.recharges")),
    path("", include("integrations.urls")),
    re_path(r"^[\s\S]*$", api_not_found),  # any path, newlines included
]
