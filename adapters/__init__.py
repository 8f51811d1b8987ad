"""One package per external system; adapters never import each other."""
