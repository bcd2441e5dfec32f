from django.urls import path

from stores.api import views

urlpatterns = [
    path("stores/", views.StoreList.as_view(), name="store-list"),
    path("stores/<int:pk>/", views.StoreDetail.as_view(), name="store-detail"),
    path("cities/", views.CityList.as_view(), name="city-list"),
]
