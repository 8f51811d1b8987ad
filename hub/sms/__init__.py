"""SMS: the persistent outbound queue, delivery states from receipts, inbound messages."""
