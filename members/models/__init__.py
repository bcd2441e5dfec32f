"""Members across channels: identities, tiers, points, wallet, coupons, guides and commission.

The models live in one module per area; they are imported here so Django sees one app.
"""

from members.models.member import *  # noqa: F401,F403
from members.models.points import *  # noqa: F401,F403
from members.models.wallet import *  # noqa: F401,F403
from members.models.coupons import *  # noqa: F401,F403
from members.models.guides import *  # noqa: F401,F403
