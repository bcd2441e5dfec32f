from django.utils.translation import gettext_lazy as _

from o2o.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied


class OrderNotFound(NotFound):
    code = "order_not_found"
    default_message = _("Order not found.")


class InvalidOrderTransition(Conflict):
    code = "invalid_order_state"
    default_message = _("The order cannot do this in its current state.")


class DuplicateDifferentPayload(DomainError):
    code = "duplicate_different_payload"
    default_message = _("This order id was already used for a different order.")


class InvalidFulfillment(InvalidInput):
    code = "invalid_fulfillment"
    default_message = _("This fulfillment is not possible for the order.")


class StoreRequired(InvalidInput):
    code = "store_required"
    default_message = _("A store is required for this order.")


class NoWarehouseCanFulfil(Conflict):
    code = "insufficient_stock"
    default_message = _("No warehouse has enough stock for this order.")


class PaymentMismatch(DomainError):
    code = "payment_mismatch"
    default_message = _("The payments do not add up to the amount due.")


class OrderNotPayable(Conflict):
    code = "order_not_payable"
    default_message = _("This order can no longer be paid.")


class WrongStore(PermissionDenied):
    code = "wrong_store"
    default_message = _("This order is not picked up at your store.")


class PickupCodeInvalid(DomainError):
    code = "pickup_code_invalid"
    default_message = _("Unknown pickup code.")


class ReturnExceedsPurchase(DomainError):
    code = "return_exceeds_purchase"
    default_message = _("You cannot return more than was bought and handed over.")


class OrderNotReturnable(Conflict):
    code = "order_not_returnable"
    default_message = _("This order has nothing that can be returned.")


class InvalidDiscount(InvalidInput):
    code = "invalid_discount"
    default_message = _("The discount must be between zero and the order subtotal.")


class UnknownOrderLine(DomainError):
    code = "unknown_order_line"
    default_message = _("The line does not belong to this order.")


class ShipmentNotFound(NotFound):
    code = "shipment_not_found"
    default_message = _("Shipment not found.")


class ReturnWindowClosed(Conflict):
    code = "return_window_closed"
    default_message = _("The return window of this order has passed; a manager must approve.")


class GoodsInTransit(Conflict):
    code = "goods_in_transit"
    default_message = _("The goods are on their way to the pickup store; cancel after they arrive.")


class ExchangeMemberMismatch(Conflict):
    code = "exchange_member_mismatch"
    default_message = _("This order belongs to another member: an exchange stays with the original order's member.")


class WalletProofRequired(DomainError):
    code = "wallet_proof_required"
    default_message = _("Paying from the wallet needs the customer's proof: their dynamic member code, or the "
                        "member named by their WeChat identity.")


class GuideSceneInvalid(DomainError):
    code = "guide_scene_invalid"
    default_message = _("This QR scene names no active shop assistant.")


class MemberRequired(InvalidInput):
    code = "member_required"
    default_message = _("Points and wallet pay only for a member's order: name the member.")


class CodNotAvailable(Conflict):
    code = "cod_not_available"
    default_message = _("Cash on delivery is only for orders shipped to the customer.")


class CodChosen(Conflict):
    code = "cod_chosen"
    default_message = _("This order is paid in cash on delivery; cancel it to pay another way.")


class CodTrackingUnknown(NotFound):
    code = "cod_tracking_unknown"
    default_message = _("No shipped cash-on-delivery parcel has this tracking number.")


class CodNotAwaiting(Conflict):
    code = "cod_not_awaiting"
    default_message = _("This parcel's order is not waiting for a cash-on-delivery remittance.")


class CodAmountMismatch(InvalidInput):
    code = "cod_amount_mismatch"
    default_message = _("The remitted amount is not what the customer owed on delivery.")


class CodAlreadyRemitted(Conflict):
    code = "cod_already_remitted"
    default_message = _("This parcel's remittance was already recorded.")


class CodBatchRejected(InvalidInput):
    code = "cod_batch_rejected"
    default_message = _("The file has bad rows; nothing from it was recorded.")


class FulfilmentStarted(Conflict):
    code = "fulfilment_started"
    default_message = _("Fulfilment of this order has started; it can no longer be changed.")


class OrderAlreadyPaid(Conflict):
    code = "order_already_paid"
    default_message = _("The pickup store can be changed only while the order is unpaid.")
