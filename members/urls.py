from django.urls import path

from members import views

app_name = "members"

urlpatterns = [
    path("<str:scene>", views.guide_qr_landing, name="guide_qr"),
    path("<str:scene>/", views.guide_qr_landing),
]
