"""Who read a member's unmasked personal data, and when (PIPL: minimum necessary, accountable access)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from members.models.member import Member


class PersonalDataAccess(models.Model):
    """One read of a member's unmasked phone, name or identities, through the API or a page."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+", verbose_name=_("member"))
    reader = models.CharField(_("read by"), max_length=100,
                              help_text=_("The API key (its prefix and name) or the staff user."))
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="+", verbose_name=_("staff user"))
    fields = models.CharField(_("data shown"), max_length=200)
    path = models.CharField(_("where"), max_length=300)
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("personal data access")
        verbose_name_plural = _("personal data accesses")
        ordering = ["-id"]
        indexes = [models.Index(fields=["member", "created_at"], name="pii_access_member_idx")]

    def __str__(self) -> str:
        return f"{self.reader} → {self.member_id} ({self.fields})"
