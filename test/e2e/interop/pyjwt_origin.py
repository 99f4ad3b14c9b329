"""A tiny origin that trusts nothing but Gatehouse's X-Auth-Assertion, verified with PyJWT.

Usage: pyjwt_origin.py PORT JWKS_URL ISSUER AUDIENCE
Answers every GET with JSON: 200 {"verified": true, "claims": ...} or 401 {"verified": false, "error": ...},
except GET /notices: the logout notices received so far. POST /backchannel-logout takes a logout
notice (the route's logout_notify): a form post of logout_token, verified as README "Revocation"
shows, answered 200 (verified, jti not seen before) or 400.
Prints "ready" once listening. Only the standard library plus PyJWT (Debian python3-jwt).
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import jwt

port, jwks_url, issuer, audience = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
jwks = jwt.PyJWKClient(jwks_url)
EVENT = "http://schemas.openid.net/event/backchannel-logout"
notices = []  # what each POST /backchannel-logout made of its token
seen_jti = set()
lock = threading.Lock()


def verify_logout_token(token, audience):
    if jwt.get_unverified_header(token).get("typ") != "logout+jwt":
        raise jwt.InvalidTokenError("not a logout token")
    claims = jwt.decode(token, jwks.get_signing_key_from_jwt(token).key, algorithms=["ES256", "EdDSA"],
                        audience=audience, issuer=issuer,
                        options={"require": ["iss", "aud", "iat", "exp", "jti", "sub", "sid", "events"]}, leeway=30)
    if "nonce" in claims or not isinstance(claims["events"].get(EVENT), dict):
        raise jwt.InvalidTokenError("not a logout token")
    return claims


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        try:
            if self.path != "/backchannel-logout" or self.headers.get("content-type") != "application/x-www-form-urlencoded":
                raise jwt.InvalidTokenError("not a logout notice")
            # The notice's audience is the route's logout_notify, never the assertions' audience.
            claims = verify_logout_token((form.get("logout_token") or [""])[0], audience + "/backchannel-logout")
            with lock:
                if claims["jti"] in seen_jti:
                    raise jwt.InvalidTokenError("jti replayed")
                seen_jti.add(claims["jti"])
                notices.append({"verified": True, "claims": claims})
            self.answer(200, {})
        except Exception as e:  # any failure is a refusal
            with lock:
                notices.append({"verified": False, "error": type(e).__name__})
            self.answer(400, {})

    def do_GET(self):
        if self.path == "/notices":
            with lock:
                return self.answer(200, notices)
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
