"""One FilterSet per order resource."""

import django_filters
from django.db.models import Exists, OuterRef, Q

from o2o.api import datetime_filter, id_filter
from orders.models import Channel, Fulfillment, Order, OrderEvent, Return, Shipment, Status
from payments.models import Refund


class OrderFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Status.choices, help_text="Repeat for several.")
    channel = django_filters.ChoiceFilter(choices=Channel.choices)
    fulfillment = django_filters.ChoiceFilter(choices=Fulfillment.choices)
    store = id_filter(field_name="store_id")
    number = django_filters.CharFilter(max_length=30)
    external_id = django_filters.CharFilter(max_length=100)
    customer_phone = django_filters.CharFilter(max_length=20)
    created_after = datetime_filter(field_name="created_at", lookup_expr="gte")
    created_before = datetime_filter(field_name="created_at", lookup_expr="lt")
    updated_since = datetime_filter(
        method="filter_updated_since",
        help_text="Changed at or after this time (ISO 8601): any status, payment, shipment or return event.")

    class Meta:
        model = Order
        fields = ["status", "channel", "fulfillment", "store", "number", "external_id", "customer_phone",
                  "created_after", "created_before", "updated_since"]

    def filter_updated_since(self, queryset, name, value):
        # Status, payment and refund changes bump updated_at; events that change no order column
        # (a shipment packed, a pickup code checked) only write an OrderEvent, so its time counts too.
        changed = OrderEvent.objects.filter(order=OuterRef("pk"), created_at__gte=value)
        return queryset.filter(Q(updated_at__gte=value) | Exists(changed))


SYNC_HELP = "Changed at or after this time (ISO 8601); the list runs in (updated_at, id) order."


class ShipmentFilter(django_filters.FilterSet):
    order = id_filter(field_name="order_id")
    status = django_filters.ChoiceFilter(choices=Shipment.Status.choices)
    warehouse = id_filter(field_name="warehouse_id")
    updated_since = datetime_filter(field_name="updated_at", lookup_expr="gte", help_text=SYNC_HELP)

    class Meta:
        model = Shipment
        fields = ["order", "status", "warehouse", "updated_since"]


class ReturnFilter(django_filters.FilterSet):
    order = id_filter(field_name="order_id")
    store = id_filter(field_name="store_id")
    created_after = datetime_filter(field_name="created_at", lookup_expr="gte")
    updated_since = datetime_filter(field_name="updated_at", lookup_expr="gte", help_text=SYNC_HELP)

    class Meta:
        model = Return
        fields = ["order", "store", "created_after", "updated_since"]


class RefundFilter(django_filters.FilterSet):
    order = id_filter(method="filter_order", help_text="Refunds of this order.")
    status = django_filters.ChoiceFilter(choices=Refund.Status.choices)
    updated_since = datetime_filter(field_name="updated_at", lookup_expr="gte", help_text=SYNC_HELP)

    class Meta:
        model = Refund
        fields = ["order", "status", "updated_since"]

    def filter_order(self, queryset, name, value):
        return queryset.filter(payment__reference__in=Order.objects.filter(pk=value).values("number"))
