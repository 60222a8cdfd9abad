"""Exchange Web Services: the EWS sink, its client, autodiscover, sign-in and item shapes.

Built on exchangelib. Imports only pstkit core."""
