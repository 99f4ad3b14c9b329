"""A tiny origin that trusts nothing but Gatehouse's X-Auth-Assertion, verified with PyJWT.

Usage: pyjwt_origin.py PORT JWKS_URL ISSUER AUDIENCE
Answers every request with JSON: 200 {"verified": true, "claims": ...} or 401 {"verified": false, "error": ...}.
Prints "ready" once listening. Only the standard library plus PyJWT (Debian python3-jwt).
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

port, jwks_url, issuer, audience = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
jwks = jwt.PyJWKClient(jwks_url)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        token = self.headers.get("X-Auth-Assertion")
        try:
            if not token:
                raise jwt.InvalidTokenError("no assertion")
            key = jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["ES256", "EdDSA"],
                audience=audience,
                issuer=issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "sid"]},
                leeway=30,
            )
            status, body = 200, {"verified": True, "claims": claims, "lifetime": claims["exp"] - claims["iat"],
                                 "user_id_header": self.headers.get("X-Auth-User-Id")}
        except Exception as e:  # any failure is a refusal
            status, body = 401, {"verified": False, "error": type(e).__name__}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
print("ready", flush=True)
server.serve_forever()
