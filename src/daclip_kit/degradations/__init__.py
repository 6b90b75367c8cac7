"""degradations."""
