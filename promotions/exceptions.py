from django.utils.translation import gettext_lazy as _

from o2o.errors import Conflict


class PromotionExhausted(Conflict):
    code = "promotion_exhausted"
    default_message = _("A promotion in this sale has just run out; price the sale again.")
