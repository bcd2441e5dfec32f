"""Partners manage their webhook subscriptions, read their delivery log, ping a subscription and ask
for deliveries again over the API."""

from __future__ import annotations

import django_filters
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from o2o.api import LIST_ERRORS, READ_ERRORS, WRITE_ERRORS, StrictInput, Text, api_doc, id_filter
from o2o.apiauth import PARTNER, principal_of
from o2o.idempotency import idempotent
from integrations.models import WebhookDelivery, WebhookSubscription
from integrations.webhooks import (EVENTS, PING_EVENT, REDELIVER_MAX, deliveries_in_range, deliveries_redeliver,
                                   ping_send, subscription_create)

TAGS = ["webhooks"]


class SubscriptionIn(StrictInput, serializers.Serializer):
    url = Text(max_length=500, help_text="https URL that receives POSTed events.")
    events = serializers.ListField(child=serializers.ChoiceField(choices=[*EVENTS, "*"]), min_length=1,
                                   max_length=len(EVENTS) + 1,
                                   help_text='Event types, or "*" for all you may see.')


class SubscriptionOut(serializers.ModelSerializer):
    class Meta:
        model = WebhookSubscription
        fields = ["id", "url", "events", "is_active", "created_at"]
        read_only_fields = fields


class SubscriptionCreatedOut(SubscriptionOut):
    secret = serializers.CharField(read_only=True, help_text="Signing secret; shown only in this answer.")

    class Meta(SubscriptionOut.Meta):
        fields = [*SubscriptionOut.Meta.fields, "secret"]
        read_only_fields = fields


class DeliveryOut(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = ["id", "subscription", "event_id", "topic", "status", "attempts", "next_attempt_at",
                  "last_status_code", "last_error", "created_at", "delivered_at"]
        read_only_fields = fields


class DeliveryFilter(django_filters.FilterSet):
    subscription = id_filter(field_name="subscription_id")
    status = django_filters.ChoiceFilter(choices=WebhookDelivery.Status.choices)
    topic = django_filters.ChoiceFilter(choices=[(e, e) for e in (*EVENTS, PING_EVENT)])

    class Meta:
        model = WebhookDelivery
        fields = ["subscription", "status", "topic"]


SUBSCRIPTION = {"id": 3, "url": "https://partner.example.com/o2o/events",
                "events": ["order.paid", "order.shipped"], "is_active": True,
                "created_at": "2026-11-23T18:00:00+08:00"}


class PartnerOnly:
    principal_kinds = {PARTNER}
    required_scopes: dict = {}

    @property
    def principal(self):
        return principal_of(self.request)

    def key(self):
        principal = self.principal
        return principal.key if principal is not None else None


class SubscriptionListCreate(PartnerOnly, generics.ListAPIView):
    serializer_class = SubscriptionOut
    ordering = "-id"

    def get_queryset(self):
        return WebhookSubscription.objects.filter(partner_key=self.key())

    @api_doc(summary="List your webhook subscriptions", tags=TAGS,
             responses={200: SubscriptionOut(many=True)},
             errors=LIST_ERRORS, examples=[OpenApiExample("subscription", value=SUBSCRIPTION,
                                                          response_only=True,
                                                          status_codes=["200"])])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @api_doc(summary="Subscribe to events", tags=TAGS, request=SubscriptionIn, idempotent=True,
             description="Deliveries are POSTed as JSON {id, type, created_at, data}, signed in "
                         "X-O2O-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "
                         '"<t>.<body>")>. Retried with backoff for a day; drop duplicates by id and stale '
                         "order events by data.version.",
             responses={201: SubscriptionCreatedOut}, errors=WRITE_ERRORS,
             error_examples={400: [("invalid_url", "The URL must use https."),
                                   ("event_not_allowed",
                                    "This API key lacks the scope for event order.paid.")]},
             examples=[OpenApiExample("subscribe", request_only=True,
                                      value={"url": SUBSCRIPTION["url"], "events": SUBSCRIPTION["events"]}),
                       OpenApiExample("created", response_only=True, status_codes=["201"],
                                      value={**SUBSCRIPTION, "secret": "whsec_Zm9vYmFy"})])
    @idempotent
    def post(self, request, *args, **kwargs):
        data = SubscriptionIn(data=request.data)
        data.is_valid(raise_exception=True)
        sub = subscription_create(key=self.principal.key, **data.validated_data)
        return Response(SubscriptionCreatedOut(sub).data, status=201)


class SubscriptionDetail(PartnerOnly, generics.RetrieveDestroyAPIView):
    serializer_class = SubscriptionOut

    def get_queryset(self):
        return WebhookSubscription.objects.filter(partner_key=self.key())

    @api_doc(summary="Read a webhook subscription", tags=TAGS, responses={200: SubscriptionOut},
             errors=READ_ERRORS,
             examples=[OpenApiExample("subscription", value=SUBSCRIPTION, response_only=True,
                                      status_codes=["200"])])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @api_doc(summary="Unsubscribe", tags=TAGS, responses={204: None}, errors=READ_ERRORS)
    def delete(self, request, *args, **kwargs):
        return super().delete(request, *args, **kwargs)


class DeliveryList(PartnerOnly, generics.ListAPIView):
    serializer_class = DeliveryOut
    filterset_class = DeliveryFilter
    ordering = "-id"

    def get_queryset(self):
        return WebhookDelivery.objects.filter(subscription__partner_key=self.key())

    @api_doc(summary="Your webhook delivery log", tags=TAGS, responses={200: DeliveryOut(many=True)},
             errors=LIST_ERRORS,
             examples=[OpenApiExample("delivery", response_only=True, status_codes=["200"], value={
                 "id": 90, "subscription": 3, "event_id": "evt_1207", "topic": "order.paid",
                 "status": "pending",
                 "attempts": 2, "next_attempt_at": "2026-11-23T18:02:00+08:00", "last_status_code": 503,
                 "last_error": "HTTP 503", "created_at": "2026-11-23T18:00:00+08:00", "delivered_at": None})])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


DELIVERY = {"id": 91, "subscription": 3, "event_id": "evt_ping_5f0c", "topic": PING_EVENT, "status": "succeeded",
            "attempts": 1, "next_attempt_at": "2026-11-23T18:00:00+08:00", "last_status_code": 200,
            "last_error": "", "created_at": "2026-11-23T18:00:00+08:00",
            "delivered_at": "2026-11-23T18:00:00+08:00"}


class SubscriptionPing(PartnerOnly, APIView):
    """Send a signed webhook.ping to the subscription's URL now and answer with the delivery."""

    @api_doc(summary="Ping a subscription", tags=TAGS, request=None, idempotent=True,
             operation_id="webhooks_subscription_ping",
             description="Sends a signed `webhook.ping` event to the subscription's URL at once, the way "
                         "every event is sent, and answers with the delivery: `status` succeeded when the "
                         "receiver answered 2xx, else dead with `last_status_code` / `last_error`. A ping "
                         "is not retried.",
             responses={201: DeliveryOut}, errors=(*WRITE_ERRORS, 404),
             error_examples={409: [("subscription_inactive", "This subscription is not active.")]},
             examples=[OpenApiExample("ping", response_only=True, status_codes=["201"], value=DELIVERY)])
    @idempotent(atomic=False)  # it calls the receiver after its own commit
    def post(self, request, pk: int):
        subscription = get_object_or_404(WebhookSubscription.objects.select_related("partner_key"),
                                         pk=pk, partner_key=self.key())
        return Response(DeliveryOut(ping_send(subscription=subscription)).data, status=201)


class DeliveryRedeliver(PartnerOnly, APIView):
    """Send one delivery again now."""

    @api_doc(summary="Redeliver a delivery", tags=TAGS, request=None, idempotent=True,
             operation_id="webhooks_delivery_redeliver",
             description="Queues the delivery to be sent again now, with the same event id and body and a "
                         "new retry window (a delivery being sent at this moment is left to finish).",
             responses={202: DeliveryOut}, errors=(*WRITE_ERRORS, 404),
             examples=[OpenApiExample("queued", response_only=True, status_codes=["202"],
                                      value={**DELIVERY, "topic": "order.paid", "event_id": "evt_1207",
                                             "status": "pending", "delivered_at": None})])
    @idempotent
    def post(self, request, pk: int):
        delivery = get_object_or_404(WebhookDelivery, pk=pk, subscription__partner_key=self.key())
        deliveries_redeliver(ids=[delivery.pk])
        delivery.refresh_from_db()
        return Response(DeliveryOut(delivery).data, status=202)


class RedeliverRangeIn(serializers.Serializer):
    since = serializers.DateTimeField(help_text="Deliveries created at or after this time.")
    until = serializers.DateTimeField(required=False, help_text="… and before this time (default: now).")
    status = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookDelivery.Status.choices), required=False, min_length=1,
        max_length=3, help_text='Which deliveries to send again (default ["dead"]).')
    subscription = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1,
                                            help_text="Only this subscription's deliveries.")

    def validate(self, attrs):
        attrs.setdefault("until", timezone.now())
        if attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": [_("Must be later than since.")]})
        return attrs


class RedeliverRangeOut(serializers.Serializer):
    count = serializers.IntegerField()
    deliveries = serializers.ListField(child=serializers.IntegerField(), help_text="Ids queued to be sent.")


class DeliveriesRedeliver(PartnerOnly, APIView):
    """Send again every delivery of a time range (by default the dead letters)."""

    @api_doc(summary="Redeliver a time range", tags=TAGS, request=RedeliverRangeIn, idempotent=True,
             operation_id="webhooks_deliveries_redeliver_range",
             description=f"Queues every delivery of yours created in [since, until) with the given statuses "
                         f"(default dead) to be sent again now, at most {REDELIVER_MAX} per request; pings "
                         "are left out. Each keeps its event id and body.",
             responses={202: RedeliverRangeOut}, errors=WRITE_ERRORS,
             error_examples={400: [("too_many_deliveries",
                                    f"More than {REDELIVER_MAX} deliveries match; choose a shorter time range.")]},
             examples=[OpenApiExample("range", request_only=True,
                                      value={"since": "2026-11-23T00:00:00+08:00",
                                             "until": "2026-11-24T00:00:00+08:00"}),
                       OpenApiExample("queued", response_only=True, status_codes=["202"],
                                      value={"count": 2, "deliveries": [90, 94]})])
    @idempotent
    def post(self, request):
        data = RedeliverRangeIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        ids = deliveries_in_range(key=self.key(), since=values["since"], until=values["until"],
                                  statuses=values.get("status") or [WebhookDelivery.Status.DEAD],
                                  subscription_id=values.get("subscription"))
        queued = deliveries_redeliver(ids=ids)
        return Response({"count": len(queued), "deliveries": queued}, status=202)
