"""OAuth2 for SMTP tests: a token endpoint on 127.0.0.1 (a tiny threaded http.server
that counts its calls and issues tokens with an expiry), and an aiosmtpd handler that
offers AUTH XOAUTH2 and accepts only the tokens that endpoint issued and did not revoke,
refusing others as Google (334 + base64 JSON, then 535) or Microsoft (535) does."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

from aiosmtpd.smtp import AuthResult

from tests.support.smtp_server import Handler


class TokenEndpoint:
    """POST /<anything>: grant_type refresh_token or authorization_code (the code must
    be one given to ``expect_code``, with the verifier of its challenge)."""

    def __init__(self, *, expires_in: int = 3600):
        self.expires_in = expires_in
        #: Each call's path and form, in order.
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        #: The next answers, instead of a token: (status, JSON body).
        self.answers: list[tuple[int, dict]] = []
        self.refresh_token = "1//refresh-from-the-code"
        #: Answer each refresh with a new refresh token too (as Microsoft does).
        self.rotate = False
        self._codes: dict[str, str] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        # A short poll: shutdown() waits for it (the default half second, per test).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> TokenEndpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def accepts(self, token: str) -> bool:
        with self._lock:
            return token in self.issued and token not in self.revoked

    def revoke_all(self) -> None:
        with self._lock:
            self.revoked.update(self.issued)

    def expect_code(self, code: str, challenge: str) -> None:
        self._codes[code] = challenge

    def _answer(self, form: dict[str, str]) -> tuple[int, dict]:
        with self._lock:
            if self.answers:
                return self.answers.pop(0)
            if form.get("grant_type") == "authorization_code":
                challenge = self._codes.pop(form.get("code", ""), None)
                verifier = form.get("code_verifier", "").encode()
                digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest())
                if challenge is None or digest.rstrip(b"=").decode() != challenge:
                    return 400, {"error": "invalid_grant", "error_description": "Bad code."}
            token = f"ya29.token-{len(self.issued) + 1}"
            self.issued.append(token)
            answer = {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
            if form.get("grant_type") == "authorization_code":
                answer["refresh_token"] = self.refresh_token
            elif self.rotate:
                answer["refresh_token"] = f"rotated-{len(self.issued)}"
            return 200, answer

    def _handler_class(self):
        endpoint = self

        class Answer(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                with endpoint._lock:
                    endpoint.calls.append((self.path, form))
                status, body = endpoint._answer(form)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Answer


GOOGLE = "google"
MICROSOFT = "microsoft"


@dataclass
class XOAuth2Handler(Handler):
    """Handler offering AUTH XOAUTH2: ``accepts(token)`` decides; refusals in the
    ``style`` of a provider. ``xoauth2_attempts`` holds (user, token) of each attempt."""

    accepts: object = None
    style: str = GOOGLE
    xoauth2_attempts: list[tuple[str, str]] = field(default_factory=list)

    async def auth_XOAUTH2(self, server, args):
        raw = args[1] if len(args) > 1 else ""
        fields = base64.b64decode(raw).decode().split("\x01")
        values = dict(f.split("=", 1) for f in fields if "=" in f)
        user, token = values.get("user", ""), values.get("auth", "").removeprefix("Bearer ")
        self.xoauth2_attempts.append((user, token))
        if callable(self.accepts) and self.accepts(token):
            return AuthResult(success=True, handled=False, auth_data=user)
        if self.style == GOOGLE:
            error = {"status": "401", "schemes": "Bearer", "scope": "https://mail.google.com/"}
            await server.challenge_auth(json.dumps(error))
            return AuthResult(
                success=False, handled=False, message="535 5.7.8 Username and Password not accepted"
            )
        return AuthResult(
            success=False, handled=False, message="535 5.7.3 Authentication unsuccessful"
        )
