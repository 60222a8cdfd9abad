"""A token-info endpoint for Dovecot's oauth2 passdb, so XOAUTH2 and
OAUTHBEARER logins can be tested against the real server (127.0.0.1 only)."""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class TokenInfoServer:
    """GET /tokeninfo?access_token=T -> 200 {"email": user} for issued tokens, else 401."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        tokens = self.tokens

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                user = tokens.get((query.get("access_token") or [""])[0])
                body = json.dumps({"email": user} if user else {"error": "invalid_token"})
                self.send_response(200 if user else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/tokeninfo?access_token="

    def issue(self, user: str) -> str:
        token = secrets.token_urlsafe(24)
        self.tokens[token] = user
        return token

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
