"""Microsoft Graph: the Graph mail sink, its HTTP client, sign-in, folders and item JSON.

`graph.pim` holds contacts and calendar items. Imports pstkit core and pim."""
