"""Neutral code several rooms share: time-zone rules and iCalendar VTIMEZONE writing/reading.

Imports nothing from pstkit.converters; any room may import it."""
