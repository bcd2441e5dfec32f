from django.urls import path

from integrations import webhooks_api

urlpatterns = [
    path("webhooks/subscriptions/", webhooks_api.SubscriptionListCreate.as_view(),
         name="webhook-subscription-list"),
    path("webhooks/subscriptions/<int:pk>/", webhooks_api.SubscriptionDetail.as_view(),
         name="webhook-subscription-detail"),
    path("webhooks/deliveries/", webhooks_api.DeliveryList.as_view(), name="webhook-delivery-list"),
]
