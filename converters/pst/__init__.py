"""Outlook PST/OST: the node reader (NDB, LTP, messaging), the libpff fallback, MAPI -> MIME.

Also the RTF decoder and the optional C twins of the hot loops. Imports pstkit core and pim."""
