"""A frame becomes a number, and the number a mood."""
