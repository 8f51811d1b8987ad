"""Wire formats as pure, I/O-free code: bytes or dicts in, typed objects out, and back."""
