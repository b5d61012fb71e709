"""Dispatch: nearest available resource by road travel time and the incident lifecycle."""
