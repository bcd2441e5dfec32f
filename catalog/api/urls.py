from django.urls import path

from catalog.api import views

urlpatterns = [
    path("catalog/categories/", views.CategoryList.as_view(), name="category-list"),
    path("catalog/categories/<int:pk>/", views.CategoryDetail.as_view(), name="category-detail"),
    path("catalog/products/", views.ProductList.as_view(), name="product-list"),
    path("catalog/products/<int:pk>/", views.ProductDetail.as_view(), name="product-detail"),
    path("catalog/skus/", views.SkuList.as_view(), name="sku-list"),
    path("catalog/skus/<int:pk>/", views.SkuDetail.as_view(), name="sku-detail"),
]
