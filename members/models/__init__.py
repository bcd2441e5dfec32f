"""Members across channels: identities, tiers, points, wallet, coupons, guides and commission.

The models live in one module per area; they are imported here so Django sees one app.
"""

from members.models.member import (
    RegistrationChannel,
    Tier,
    Member,
    IdentityKind,
    MemberIdentity,
    MemberMerge,
    MemberSpend,
)
from members.models.points import (
    SalesChannel,
    ExpiryPolicy,
    PointsConfig,
    PointsRule,
    LotKind,
    LotStatus,
    PointsLot,
    EntryKind,
    PointsEntry,
    PointsConsumption,
)
from members.models.wallet import (
    RechargePackage,
    WalletRecharge,
    WalletEntryKind,
    WalletEntry,
    WalletSpendAllocation,
)
from members.models.coupons import (
    CouponKind,
    CouponValidity,
    CostBearer,
    CouponTemplate,
    CouponQuota,
    CouponCampaign,
    IssuedCoupon,
    CouponRedemption,
    CouponEvent,
)
from members.models.guides import (
    BindingPolicy,
    GuideLeavePolicy,
    GuideBindingRule,
    GuideBinding,
    CommissionRule,
    CommissionEntry,
    GuideCommissionBalance,
)

__all__ = [
    "RegistrationChannel",
    "Tier",
    "Member",
    "IdentityKind",
    "MemberIdentity",
    "MemberMerge",
    "MemberSpend",
    "SalesChannel",
    "ExpiryPolicy",
    "PointsConfig",
    "PointsRule",
    "LotKind",
    "LotStatus",
    "PointsLot",
    "EntryKind",
    "PointsEntry",
    "PointsConsumption",
    "RechargePackage",
    "WalletRecharge",
    "WalletEntryKind",
    "WalletEntry",
    "WalletSpendAllocation",
    "CouponKind",
    "CouponValidity",
    "CostBearer",
    "CouponTemplate",
    "CouponQuota",
    "CouponCampaign",
    "IssuedCoupon",
    "CouponRedemption",
    "CouponEvent",
    "BindingPolicy",
    "GuideLeavePolicy",
    "GuideBindingRule",
    "GuideBinding",
    "CommissionRule",
    "CommissionEntry",
    "GuideCommissionBalance",
]
