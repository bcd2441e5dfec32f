"""Head-office admin for regions, cities, warehouses, stores and staff.

Also holds the small helpers every service-backed admin page uses (inventory's
admin imports them): a form page rendered inside the admin chrome, and the
conversion of a ``DomainError`` into a form error or an admin message.
"""

from __future__ import annotations

from functools import partial, reduce
from operator import or_
from typing import Callable, Iterable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.password_validation import password_validators_help_text_html
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.forms import Media
from django.http import HttpResponseRedirect
from django.template import engines
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, gettext_lazy as _

from o2o.errors import DomainError, domain_error_text
from stores.models import (
    CapabilitySwitch,
    City,
    Region,
    Role,
    RolloutChange,
    StaffProfile,
    Store,
    StoreMembership,
    TradeArea,
    TradeAreaPostcode,
    Warehouse,
)
from stores.selectors import capabilities_effective, staff_sees_all, staff_store_ids, staff_warehouse_ids
from stores.services import capability_set, launch_date_set, rollout_copy, rollout_digest, staff_create

# --- shared helpers for service-backed admin pages ------------------------------------------

FORM_PAGE = engines["django"].from_string("""{% extends "admin/base_site.html" %}
{% load i18n admin_urls static %}
{% block extrastyle %}{{ block.super }}
<link rel="stylesheet" href="{% static 'admin/css/forms.css' %}">{% endblock %}
{% block extrahead %}{{ block.super }}
<script src="{% url 'admin:jsi18n' %}"></script>{{ media }}{% endblock %}
{% block bodyclass %}{{ block.super }} app-{{ opts.app_label }} model-{{ opts.model_name }} change-form
{% endblock %}
{% block breadcrumbs %}<div class="breadcrumbs"><a href="{% url 'admin:index' %}">{% translate 'Home' %}</a>
&rsaquo; <a href="{% url 'admin:app_list' app_label=opts.app_label %}">{{ opts.app_config.verbose_name }}</a>
&rsaquo; <a href="{% url opts|admin_urlname:'changelist' %}">{{ opts.verbose_name_plural|capfirst }}</a>
&rsaquo; {{ title }}</div>{% endblock %}
{% block content %}<div id="content-main">
<form method="post" novalidate>{% csrf_token %}
{% for name, value in hidden %}<input type="hidden" name="{{ name }}" value="{{ value }}">{% endfor %}
{% if intro %}<p>{{ intro }}</p>{% endif %}
{% if objects %}<ul>{% for obj in objects %}<li>{{ obj }}</li>{% endfor %}</ul>{% endif %}
{% if form.errors %}<p class="errornote">{% translate 'Please correct the errors below.' %}</p>{% endif %}
{{ form.non_field_errors }}
<fieldset class="module aligned">
{% for field in form.visible_fields %}
<div class="form-row{% if field.errors %} errors{% endif %} field-{{ field.name }}">
{{ field.errors }}<div><div class="flex-container"><label for="{{ field.id_for_label }}"
{% if field.field.required %} class="required"{% endif %}>{{ field.label|capfirst }}:</label>
{{ field }}</div>
{% if field.help_text %}<div class="help">{{ field.help_text|safe }}</div>{% endif %}</div></div>{% endfor %}
{% for field in form.hidden_fields %}{{ field }}{% endfor %}
</fieldset>
{% if formset %}<fieldset class="module"><h2>{{ formset_title }}</h2>
{{ formset.management_form }}{{ formset.non_form_errors }}
<table><thead><tr>
{% for field in formset.empty_form.visible_fields %}<th>{{ field.label|capfirst }}</th>{% endfor %}
</tr></thead><tbody>{% for line in formset %}<tr>{% for field in line.visible_fields %}<td>
{% if forloop.first %}{% for h in line.hidden_fields %}{{ h }}{% endfor %}{% endif %}
{{ field.errors }}{{ field }}</td>
{% endfor %}</tr>{% endfor %}</tbody></table></fieldset>{% endif %}
<div class="submit-row"><input type="submit" class="default" name="apply" value="{{ submit_label }}">
<a href="{% url opts|admin_urlname:'changelist' %}" class="closelink">{% translate 'Cancel' %}</a></div>
</form></div>{% endblock %}
""")


def form_page(modeladmin: admin.ModelAdmin, request, *, title, form, submit_label, formset=None,
              formset_title="", intro="", objects: Iterable = (), hidden: Iterable[tuple[str, str]] = ()):
    media = modeladmin.media + form.media + (formset.media if formset is not None else Media())
    context = {
        **modeladmin.admin_site.each_context(request),
        "opts": modeladmin.model._meta, "title": title, "form": form, "formset": formset,
        "formset_title": formset_title, "submit_label": submit_label, "intro": intro,
        "objects": list(objects), "hidden": list(hidden), "media": media,
    }
    return TemplateResponse(request, FORM_PAGE, context)


def service_call(form: forms.Form, call: Callable):
    """Run ``call``; a DomainError becomes an error on the form (on its field when the form has it)."""
    try:
        return call()
    except DomainError as exc:
        field = exc.field if exc.field in form.fields else None
        form.add_error(field, domain_error_text(exc))
        return None


def action_each(modeladmin: admin.ModelAdmin, request, objects, call: Callable, done_message) -> int:
    """Call the service once per object (each in its own transaction); report failures per object."""
    done = 0
    for obj in objects:
        try:
            call(obj)
        except DomainError as exc:
            modeladmin.message_user(request, f"{obj}: {domain_error_text(exc)}", messages.ERROR)
        else:
            done += 1
    if done:
        modeladmin.message_user(request, done_message % {"count": done}, messages.SUCCESS)
    return done


def action_hidden_fields(request) -> list[tuple[str, str]]:
    """What an intermediate action page posts back so the changelist runs the same action again."""
    hidden = [("action", request.POST.get("action", ""))]
    selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
    hidden += [(helpers.ACTION_CHECKBOX_NAME, pk) for pk in selected]
    if request.POST.get("select_across"):
        hidden.append(("select_across", request.POST["select_across"]))
    return hidden


def change_url(obj) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


class ServiceAddAdmin(admin.ModelAdmin):
    """An admin whose add page is a form that calls one service instead of saving a ModelForm.

    Subclasses set ``add_form_class`` (a form with ``submit(actor)`` returning the
    created object, and optionally a ``formset`` attribute) and may narrow its
    choices through ``add_form_kwargs``.
    """

    add_form_class: type[forms.Form]
    add_formset_title = ""

    def add_form_kwargs(self, request) -> dict:
        return {}

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        data = request.POST if request.method == "POST" else None
        form = self.add_form_class(data, **self.add_form_kwargs(request))
        if data is not None and form.is_valid():
            obj = service_call(form, lambda: form.submit(actor=request.user))
            if obj is not None:
                self.log_addition(request, obj, [{"added": {}}])
                self.message_user(request, gettext("The {name} “{obj}” was added successfully.").format(
                    name=self.model._meta.verbose_name, obj=obj), messages.SUCCESS)
                return HttpResponseRedirect(change_url(obj))
        return form_page(self, request, title=gettext("Add %s") % self.model._meta.verbose_name, form=form,
                         formset=getattr(form, "formset", None), formset_title=self.add_formset_title,
                         submit_label=gettext("Save"))


class StoreScoped:
    """Non-HQ staff see only rows of their stores (a regional manager: the stores of the region).

    ``store_scope`` names the lookups that lead to a store; a row in scope through any of them
    is shown.  Change pages use the same queryset, so a row out of scope is "not found".
    """

    store_scope: tuple[str, ...] = ("store",)

    def store_scope_q(self, request) -> Q:
        ids = staff_store_ids(request.user)
        return reduce(or_, (Q(**{f"{name}__in": ids}) for name in self.store_scope))

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if staff_sees_all(request.user):
            return qs
        return qs.filter(self.store_scope_q(request))


# --- locations -------------------------------------------------------------------------------


def capabilities_table(**place):
    """The effective value of every O2O capability at a place and where it comes from."""
    rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", (
        (e.label, gettext("on") if e.enabled else gettext("off"), e.source)
        for e in capabilities_effective(**place)))
    return format_html('<table class="o2o-capabilities"><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead>'
                       "<tbody>{}</tbody></table>", gettext("capability"), gettext("effective"),
                       gettext("comes from"), rows)


class LaunchDateForm(forms.Form):
    launched_on = forms.DateField(label=_("O2O launched on"), required=False,
                                  help_text=_("Empty: not launched (yet)."))


def launch_date_action(modeladmin, request, queryset, place: str):
    form = LaunchDateForm(request.POST if "apply" in request.POST else None)
    if form.is_valid():
        action_each(modeladmin, request, queryset.order_by("pk"),
                    lambda obj: launch_date_set(launched_on=form.cleaned_data["launched_on"], actor=request.user,
                                                **{place: obj}),
                    gettext("Launch date set for %(count)d."))
        return None
    return form_page(modeladmin, request, title=gettext("Set the O2O launch date"), form=form, objects=queryset,
                     submit_label=gettext("Set"), hidden=action_hidden_fields(request))


class RolloutCopyForm(forms.Form):
    source = forms.ModelChoiceField(label=_("pilot city"), queryset=City.objects.all(),
                                    help_text=_("Its effective capabilities become the switches of the selected "
                                                "cities."))
    launch_on = forms.DateField(label=_("launch date"), required=False,
                                help_text=_("Optional: the selected cities' O2O launch date."))


def rollout_copy_action(modeladmin, request, targets: list[City]):
    """First post: the dry run lists every change.  Second post: exactly those changes are applied
    in one transaction; if anything moved in between (the digest differs) nothing is applied and
    the new list is shown."""
    form = RolloutCopyForm(request.POST if "apply" in request.POST else None)
    changes, intro, digest = [], gettext("Preview first: nothing is written until you apply."), ""
    if form.is_valid():
        expect = request.POST.get("plan_digest") or None
        call = partial(rollout_copy, source=form.cleaned_data["source"], targets=targets,
                       launch_on=form.cleaned_data["launch_on"], actor=request.user)
        steps = service_call(form, lambda: call(apply=expect is not None, expect=expect))
        if steps is not None and expect is not None:
            modeladmin.message_user(request, gettext("%(count)d roll-out changes applied.") % {"count": len(steps)},
                                    messages.SUCCESS)
            return None
        if steps is None and expect is not None:  # changed since the preview: show the new list
            steps = service_call(form, lambda: call(apply=False))
        if steps is not None:
            changes = [str(step) for step in steps] or [gettext("Nothing to change.")]
            digest = rollout_digest(steps)
            intro = gettext("Dry run: these changes would be made. Apply to make them.")
    hidden = action_hidden_fields(request) + ([("plan_digest", digest)] if digest else [])
    return form_page(modeladmin, request, title=gettext("Copy a pilot city's O2O configuration"), form=form,
                     objects=changes or targets, intro=intro, hidden=hidden,
                     submit_label=gettext("Apply") if digest else gettext("Preview"))


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "city_count"]
    search_fields = ["code", "name"]
    readonly_fields = ["capabilities"]
    actions = ["copy_pilot"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_cities=Count("cities"))

    @admin.display(description=_("cities"), ordering="_cities")
    def city_count(self, obj):
        return obj._cities

    @admin.display(description=_("O2O capabilities"))
    def capabilities(self, obj):
        return capabilities_table(region=obj) if obj.pk else "—"

    @admin.action(description=_("Copy a pilot city's O2O configuration to the cities of the selected regions"),
                  permissions=["change"])
    def copy_pilot(self, request, queryset):
        return rollout_copy_action(self, request, list(City.objects.filter(region__in=queryset).order_by("pk")))


@admin.register(City)
class CityAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "region", "launched_on"]
    list_filter = ["region", ("launched_on", admin.EmptyFieldListFilter)]
    search_fields = ["code", "name", "region__name"]
    autocomplete_fields = ["region"]
    list_select_related = ["region"]
    readonly_fields = ["launched_on", "capabilities"]
    actions = ["copy_pilot", "set_launch_date"]

    @admin.display(description=_("O2O capabilities"))
    def capabilities(self, obj):
        return capabilities_table(city=obj) if obj.pk else "—"

    @admin.action(description=_("Copy a pilot city's O2O configuration to the selected cities"),
                  permissions=["change"])
    def copy_pilot(self, request, queryset):
        return rollout_copy_action(self, request, list(queryset.order_by("pk")))

    @admin.action(description=_("Set the O2O launch date"), permissions=["change"])
    def set_launch_date(self, request, queryset):
        return launch_date_action(self, request, queryset, "city")


class CapabilitySwitchForm(forms.ModelForm):
    class Meta:
        model = CapabilitySwitch
        fields = ["capability", "region", "city", "store", "enabled"]


@admin.register(CapabilitySwitch)
class CapabilitySwitchAdmin(admin.ModelAdmin):
    """Switches are written by ``capability_set`` (with an audit row), never saved by the form."""

    form = CapabilitySwitchForm
    list_display = ["capability", "level_display", "place_display", "enabled", "updated_at", "updated_by"]
    list_filter = ["capability", "enabled", "region", "city"]
    search_fields = ["region__name", "city__name", "store__name", "store__code"]
    autocomplete_fields = ["region", "city", "store"]
    list_select_related = ["region", "city", "store", "updated_by"]

    def get_readonly_fields(self, request, obj=None):
        return ["capability", "region", "city", "store"] if obj else []

    @admin.display(description=_("level"))
    def level_display(self, obj):
        return {"store": _("store"), "city": _("city"), "region": _("region")}.get(obj.level, _("global default"))

    @admin.display(description=_("place"))
    def place_display(self, obj):
        return obj.place or _("everywhere")

    def save_model(self, request, obj, form, change):
        switch = capability_set(capability=obj.capability, enabled=obj.enabled, region=obj.region, city=obj.city,
                                store=obj.store, actor=request.user)
        obj.pk = switch.pk

    def delete_model(self, request, obj):
        capability_set(capability=obj.capability, enabled=None, region=obj.region, city=obj.city,
                       store=obj.store, actor=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(RolloutChange)
class RolloutChangeAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "capability", "region", "city", "store", "before", "after", "source",
                    "actor"]
    list_filter = ["kind", "capability", "city"]
    search_fields = ["source", "city__name", "store__name"]
    list_select_related = ["region", "city", "store", "actor"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ScopedByWarehouse:
    """Non-HQ staff see only the warehouses (and stores) they work with."""

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if staff_sees_all(request.user):
            return qs
        return qs.filter(pk__in=self.scope_ids(request.user))


@admin.register(Warehouse)
class WarehouseAdmin(ScopedByWarehouse, admin.ModelAdmin):
    list_display = ["code", "name", "kind", "city", "store", "is_active"]
    list_filter = ["kind", "city", "is_active"]
    search_fields = ["code", "name", "address", "store__name"]
    autocomplete_fields = ["city"]
    list_select_related = ["city", "store"]

    @staticmethod
    def scope_ids(user):
        return staff_warehouse_ids(user)


class TradeAreaInline(admin.TabularInline):
    model = TradeArea
    extra = 0
    autocomplete_fields = ["city"]
    verbose_name = _("trade area")
    verbose_name_plural = _("trade areas (online customers of these cities count as the store's)")


class TradeAreaPostcodeInline(admin.TabularInline):
    model = TradeAreaPostcode
    extra = 0
    verbose_name = _("trade-area postcode")
    verbose_name_plural = _("trade-area postcodes (online orders shipped to these postcodes count as the store's; "
                            "the longest matching prefix wins)")


@admin.register(Store)
class StoreAdmin(ScopedByWarehouse, admin.ModelAdmin):
    list_display = ["code", "name", "city", "warehouse", "phone", "staff_count", "launched_on", "is_active"]
    list_filter = ["city__region", "city", "is_active", "cash_rounding"]
    readonly_fields = ["launched_on", "capabilities"]
    actions = ["set_launch_date"]
    inlines = [TradeAreaInline, TradeAreaPostcodeInline]

    @admin.display(description=_("O2O capabilities"))
    def capabilities(self, obj):
        return capabilities_table(store=obj) if obj.pk else "—"

    @admin.action(description=_("Set the O2O launch date"), permissions=["change"])
    def set_launch_date(self, request, queryset):
        return launch_date_action(self, request, queryset, "store")
    search_fields = ["code", "name", "address", "phone", "warehouse__code"]
    autocomplete_fields = ["city", "warehouse"]
    list_select_related = ["city", "warehouse"]

    @staticmethod
    def scope_ids(user):
        return staff_store_ids(user)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_staff=Count("memberships"))

    @admin.display(description=_("staff"), ordering="_staff")
    def staff_count(self, obj):
        return obj._staff


# --- staff -----------------------------------------------------------------------------------


class StaffCreateForm(forms.Form):
    username = forms.CharField(label=_("username"), max_length=150)
    password = forms.CharField(label=_("password"), widget=forms.PasswordInput(render_value=True),
                               help_text=password_validators_help_text_html())
    display_name = forms.CharField(label=_("name"), max_length=100)
    employee_no = forms.CharField(label=_("employee number"), max_length=20)
    role = forms.ChoiceField(label=_("role"), choices=Role.choices)
    stores = forms.ModelMultipleChoiceField(label=_("stores"), queryset=Store.objects.all(), required=False,
                                            help_text=_("Required for store managers, clerks and guides."))
    region = forms.ModelChoiceField(label=_("region"), queryset=Region.objects.all(), required=False,
                                    help_text=_("Required for regional managers."))
    guide_code = forms.CharField(label=_("guide code"), max_length=20, required=False)

    def submit(self, *, actor):
        data = self.cleaned_data
        return staff_create(username=data["username"], password=data["password"],
                            display_name=data["display_name"], role=data["role"],
                            employee_no=data["employee_no"], stores=list(data["stores"]),
                            region=data["region"], guide_code=data["guide_code"] or None)


class StoreMembershipInline(admin.TabularInline):
    model = StoreMembership
    extra = 0
    autocomplete_fields = ["store"]
    readonly_fields = ["since"]
    verbose_name = _("store membership")
    verbose_name_plural = _("store memberships")


@admin.register(StaffProfile)
class StaffProfileAdmin(ServiceAddAdmin):
    add_form_class = StaffCreateForm
    list_display = ["employee_no", "display_name", "username", "role", "region", "store_list", "guide_code",
                    "is_active"]
    list_filter = ["role", "region", "is_active", "stores"]
    search_fields = ["employee_no", "display_name", "user__username", "guide_code"]
    list_select_related = ["user", "region"]
    # The role and the login are set at creation (the service puts the user in the
    # role's group); here only the descriptive fields and memberships change.
    fields = ["user", "employee_no", "display_name", "role", "region", "guide_code", "is_active"]
    readonly_fields = ["user", "employee_no", "role"]
    autocomplete_fields = ["region"]
    inlines = [StoreMembershipInline]

    def get_queryset(self, request):
        qs = super().get_queryset(request).prefetch_related("stores")
        if staff_sees_all(request.user):
            return qs
        return qs.filter(memberships__store__in=staff_store_ids(request.user)).distinct()

    @admin.display(description=_("username"), ordering="user__username")
    def username(self, obj):
        return obj.user.username

    @admin.display(description=_("stores"))
    def store_list(self, obj):
        return ", ".join(s.name for s in obj.stores.all())
