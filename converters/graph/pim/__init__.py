"""Graph contacts and calendar: vCard/iCalendar from the store -> Graph JSON, and the sink part.

Imports the rest of the graph room, pstkit core and pim."""
