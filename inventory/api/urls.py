from django.urls import path

from inventory.api import views

urlpatterns = [
    path("stock/levels/", views.StockLevelList.as_view(), name="stock-level-list"),
]
