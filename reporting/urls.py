from django.urls import path
from django.views.i18n import JavaScriptCatalog

from reporting import views

app_name = "dashboard"

urlpatterns = [
    path("", views.dashboard, name="index"),
    # the admin calendar's month and day names, for users who are not admin staff (regional managers)
    path("jsi18n/", JavaScriptCatalog.as_view(packages=["django.contrib.admin"]), name="jsi18n"),
]
