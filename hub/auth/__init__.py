"""Identities: JWT user tokens and the permission rules over channels."""
