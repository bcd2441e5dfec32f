"""Domain errors of the members app: one flat module of ``DomainError`` subclasses with stable codes."""

from django.utils.translation import gettext_lazy as _

from o2o.errors import Conflict, DomainError, InvalidInput, NotFound

# --- members and identities ------------------------------------------------------------------


class MemberNotFound(NotFound):
    code = "member_not_found"
    default_message = _("No such member.")


class InvalidPhone(InvalidInput):
    code = "invalid_phone"
    default_message = _("Not a valid mobile number.")


class IdentityTaken(Conflict):
    code = "identity_taken"
    default_message = _("This identity is already linked to another member.")


class InvalidIdentity(InvalidInput):
    code = "invalid_identity"
    default_message = _("Unknown identity kind or empty identifier.")


class InvalidChannel(InvalidInput):
    code = "invalid_channel"
    default_message = _("Unknown or missing channel.")


class MergeSameMember(InvalidInput):
    code = "merge_same_member"
    default_message = _("A member cannot be merged into itself.")


class MemberMerged(Conflict):
    code = "member_merged"
    default_message = _("This member has already been merged into another member.")


class InvalidAmount(InvalidInput):
    code = "invalid_amount"
    default_message = _("The amount must be a positive amount in CNY with at most two decimals.")


class InvalidReference(InvalidInput):
    code = "invalid_reference"
    default_message = _("An order number or reference is required.")


# --- points ----------------------------------------------------------------------------------


class InvalidPoints(InvalidInput):
    code = "invalid_points"
    default_message = _("Points must be a positive whole number.")


class PointsInsufficient(Conflict):
    code = "points_insufficient"
    default_message = _("Not enough available points.")


class PointsCapExceeded(Conflict):
    code = "points_cap_exceeded"
    default_message = _("More points than this order allows.")


class PointsOrderConflict(Conflict):
    code = "points_order_conflict"
    default_message = _("Points for this order were already recorded for another member.")


class PointsReturnExceeded(Conflict):
    code = "points_return_exceeded"
    default_message = _("More returned than was paid for this order.")


class PointsRestoreExceeded(Conflict):
    code = "points_restore_exceeded"
    default_message = _("More points than were redeemed for this order.")


class ReasonRequired(InvalidInput):
    code = "reason_required"
    default_message = _("A reason is required.")


# --- wallet ----------------------------------------------------------------------------------


class WalletInsufficient(Conflict):
    code = "wallet_insufficient"
    default_message = _("Not enough money in the wallet.")


class WalletReferenceConflict(Conflict):
    code = "wallet_reference_conflict"
    default_message = _("This payment reference was already used for a different recharge.")


class WalletRefundExceeded(Conflict):
    code = "wallet_refund_exceeded"
    default_message = _("More than was spent from the wallet for this reference.")


class WalletNothingToRefund(Conflict):
    code = "wallet_nothing_to_refund"
    default_message = _("Nothing of this recharge is left to refund.")


class RechargeNotFound(NotFound):
    code = "recharge_not_found"
    default_message = _("No such recharge for this member.")


class InactivePackage(DomainError):
    code = "recharge_package_inactive"
    default_message = _("This recharge package is not on offer.")


# --- coupons ---------------------------------------------------------------------------------


class CouponNotFound(NotFound):
    code = "coupon_not_found"
    default_message = _("No coupon with this code.")


class CouponExpired(DomainError):
    code = "coupon_expired"
    default_message = _("This coupon has expired.")


class CouponNotYetValid(DomainError):
    code = "coupon_not_yet_valid"
    default_message = _("This coupon is not valid yet.")


class CouponNotOwned(DomainError):
    code = "coupon_not_owned"
    default_message = _("This coupon belongs to another member.")


class CouponUsed(Conflict):
    code = "coupon_used"
    default_message = _("This coupon has already been used.")


class CouponOutOfScope(DomainError):
    code = "coupon_out_of_scope"
    default_message = _("This coupon does not apply here.")


class CouponThresholdNotMet(DomainError):
    code = "coupon_threshold_not_met"
    default_message = _("The basket does not reach the coupon's minimum spend.")


class CouponLimitReached(Conflict):
    code = "coupon_limit_reached"
    default_message = _("No more of these coupons can be issued.")


class CouponNotIssuable(DomainError):
    code = "coupon_not_issuable"
    default_message = _("This coupon cannot be issued this way.")


class CouponNotShareable(DomainError):
    code = "coupon_not_shareable"
    default_message = _("This coupon cannot be shared.")


class InvalidCouponLines(InvalidInput):
    code = "invalid_coupon_lines"
    default_message = _("Each line needs a SKU id, a category id (or none) and a non-negative amount in CNY.")


class InvalidSegment(InvalidInput):
    code = "invalid_segment"
    default_message = _("The member segment is not a valid set of member filters.")


class CampaignNotRunnable(Conflict):
    code = "campaign_not_runnable"
    default_message = _("This campaign is finished or cancelled.")


# --- guides and commission -------------------------------------------------------------------


class NotAGuide(DomainError):
    code = "not_a_guide"
    default_message = _("No active shop assistant with this guide code.")


class InvalidBindingSource(InvalidInput):
    code = "invalid_binding_source"
    default_message = _("A binding comes from a QR scan, the POS or the API.")


class InvalidCommissionLines(InvalidInput):
    code = "invalid_commission_lines"
    default_message = _("Each line needs a SKU id, a category id (or none) and a non-negative amount in CNY.")


class CommissionAlreadyAccrued(Conflict):
    code = "commission_already_accrued"
    default_message = _("Commission for this order was already accrued to another guide.")


class InvalidClawback(InvalidInput):
    code = "invalid_clawback"
    default_message = _("Give either returned lines or a fraction between 0 and 1.")


# --- member codes (the customer's proof at the till and online) --------------------------------


class MemberCodeInvalid(DomainError):
    code = "member_code_invalid"
    default_message = _("This member code is not valid. Ask the customer to refresh the code in their app.")


class MemberCodeExpired(DomainError):
    code = "member_code_expired"
    default_message = _("This member code has expired. Ask the customer to refresh the code in their app.")


class MemberCodeUsed(Conflict):
    code = "member_code_used"
    default_message = _("This member code was already used. Ask the customer to refresh the code in their app.")


class MemberCodeMismatch(DomainError):
    code = "member_code_mismatch"
    default_message = _("This member code belongs to another member.")
