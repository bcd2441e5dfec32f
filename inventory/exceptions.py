from django.utils.translation import gettext_lazy as _

from o2o.errors import Conflict, DomainError, InvalidInput


class InvalidQuantity(InvalidInput):
    code = "invalid_quantity"
    default_message = _("Quantity must be a positive whole number.")


class UnknownSku(DomainError):
    code = "unknown_sku"
    default_message = _("Unknown SKU.")


class InactiveSku(DomainError):
    code = "inactive_sku"
    default_message = _("This SKU is not active.")


class UnknownWarehouse(DomainError):
    code = "unknown_warehouse"
    default_message = _("Unknown or inactive warehouse.")


class InvalidBarcode(DomainError):
    code = "invalid_barcode"
    default_message = _("Not a valid EAN-13, EAN-8 or UPC-A barcode.")


class InsufficientStock(Conflict):
    code = "insufficient_stock"
    default_message = _("Not enough stock available.")


class SameWarehouse(DomainError):
    code = "transfer_same_warehouse"
    default_message = _("A transfer needs two different warehouses.")


class InvalidTransition(Conflict):
    code = "invalid_state"
    default_message = _("This action is not allowed in the current state.")


class ReservationNotActive(Conflict):
    code = "reservation_not_active"
    default_message = _("The reservation is no longer active (expired, released or already committed).")


class CountBelowReserved(Conflict):
    code = "count_below_reserved"
    default_message = _("Counted quantity is below what is reserved for open orders.")


class InvalidReceivedQuantity(InvalidInput):
    code = "invalid_received_quantity"
    default_message = _("Received quantities cannot exceed what was shipped.")
