from django.urls import path

from orders.dashboard import views

app_name = "dashboard"

urlpatterns = [path("", views.dashboard, name="index")]
