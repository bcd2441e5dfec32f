"""The sales channels.  They belong to the platform: partner keys act for one, and every order,
payment rule and report names one."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    WEB = "web", _("Web shop")
    MINI_PROGRAM = "mini_program", _("WeChat mini-program")
    MARKETPLACE = "marketplace", _("Marketplace partner")
    POS = "pos", _("Store POS")
