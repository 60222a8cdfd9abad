"""IMAP and POP3: the IMAP source and sink, the connection, commands, folder names, Gmail.

POP3 lives here too: it shares the connection, TLS and retry code. Imports only pstkit core."""
