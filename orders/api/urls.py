from django.urls import path

from orders.api import notify, refunds, views

urlpatterns = [
    path("orders/", views.OrderListCreate.as_view(), name="order-list"),
    path("orders/<int:pk>/", views.OrderDetail.as_view(), name="order-detail"),
    path("orders/<int:pk>/cancel/", views.OrderCancel.as_view(), name="order-cancel"),
    path("orders/<int:pk>/payments/", views.OrderPaymentStart.as_view(), name="order-payment-start"),
    path("orders/<int:pk>/shipments/", views.OrderShipmentCreate.as_view(), name="order-shipment-create"),
    path("orders/<int:pk>/returns/", views.OrderReturnCreate.as_view(), name="order-return-create"),
    path("orders/<int:pk>/refunds/", refunds.OrderRefundList.as_view(), name="order-refund-list"),
    path("refunds/", refunds.RefundList.as_view(), name="refund-list"),
    path("refunds/<int:pk>/", refunds.RefundDetail.as_view(), name="refund-detail"),
    path("shipments/", views.ShipmentList.as_view(), name="shipment-list"),
    path("shipments/<int:pk>/", views.ShipmentDetail.as_view(), name="shipment-detail"),
    path("shipments/<int:pk>/pack/", views.ShipmentPack.as_view(), name="shipment-pack"),
    path("shipments/<int:pk>/ship/", views.ShipmentShip.as_view(), name="shipment-ship"),
    path("pickups/lookup/", views.PickupLookup.as_view(), name="pickup-lookup"),
    path("pickups/handover/", views.PickupHandover.as_view(), name="pickup-handover"),
    path("returns/", views.ReturnList.as_view(), name="return-list"),
    path("returns/<int:pk>/", views.ReturnDetail.as_view(), name="return-detail"),
    path("stock/availability/", views.Availability.as_view(), name="stock-availability"),
    path("payments/notify/<str:provider>/", notify.ProviderNotify.as_view(), name="payment-notify"),
]
