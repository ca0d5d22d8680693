"""The step library behind ``features/``: steps act only through Catalyst's public surfaces."""
