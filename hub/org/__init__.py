"""The org tree and the user directory."""
