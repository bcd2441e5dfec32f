from django.urls import path

from reporting import views

app_name = "dashboard"

urlpatterns = [path("", views.dashboard, name="index")]
