"""SMS providers behind one interface (hub/sms/ports.py): console, a Jasmin-compatible
HTTP gateway, and an SMPP 3.4 transceiver."""

from adapters.sms.adapter import SmsAdapter

__all__ = ["SmsAdapter"]
