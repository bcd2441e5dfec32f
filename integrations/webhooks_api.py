"""Partners manage their webhook subscriptions and read their delivery log over the API."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import OpenApiExample
from rest_framework import generics, serializers
from rest_framework.response import Response

from o2o.api import LIST_ERRORS, READ_ERRORS, WRITE_ERRORS, StrictInput, Text, api_doc, id_filter
from o2o.apiauth import PARTNER, principal_of
from o2o.idempotency import idempotent
from integrations.models import WebhookDelivery, WebhookSubscription
from integrations.webhooks import EVENTS, subscription_create

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
    topic = django_filters.ChoiceFilter(choices=[(e, e) for e in EVENTS])

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
