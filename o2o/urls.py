from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from o2o.health import healthz

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("o2o.api_urls")),
    path("pos/", include("pos.urls")),
    path("dashboard/", include("reporting.urls")),
    path("g/", include("members.urls")),
    path("healthz", healthz, name="healthz"),
]
