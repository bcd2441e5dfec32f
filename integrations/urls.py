from django.urls import path

from integrations import webhooks_api

urlpatterns = [
    path("webhooks/subscriptions/", webhooks_api.SubscriptionListCreate.as_view(),
         name="webhook-subscription-list"),
    path("webhooks/subscriptions/<int:pk>/", webhooks_api.SubscriptionDetail.as_view(),
         name="webhook-subscription-detail"),
    path("webhooks/subscriptions/<int:pk>/ping/", webhooks_api.SubscriptionPing.as_view(),
         name="webhook-subscription-ping"),
    path("webhooks/deliveries/", webhooks_api.DeliveryList.as_view(), name="webhook-delivery-list"),
    path("webhooks/deliveries/redeliver/", webhooks_api.DeliveriesRedeliver.as_view(),
         name="webhook-deliveries-redeliver"),
    path("webhooks/deliveries/<int:pk>/redeliver/", webhooks_api.DeliveryRedeliver.as_view(),
         name="webhook-delivery-redeliver"),
]
