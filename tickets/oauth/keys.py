"""Signing keys: made at first start, rotated by the CLI, published as a JWKS, used to sign and verify JWTs."""

from __future__ import annotations

import base64
import json

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

from tickets.core import clock
from tickets.core.ports import RecordStore
from tickets.oauth.freshness import Freshness

LEEWAY = 5  # seconds of clock skew tolerated on exp/nbf/iat
REBUILD_EVERY = 60  # seconds: a key retired longer ago than the longest token lives leaves the JWKS this late at most
VERIFIED_CACHE_SIZE = 10_000  # tokens per worker whose signature need not be checked again


class InvalidToken(Exception):
    """A token that is malformed, badly signed, of the wrong issuer or out of its time."""


def _generate(alg: str):
    parameters = {"use": "sig", "alg": alg}
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=parameters, auto_kid=True)
    return RSAKey.generate_key(2048, parameters=parameters, auto_kid=True)


def _import(jwk: dict):
    return ECKey.import_key(jwk) if jwk["kty"] == "EC" else RSAKey.import_key(jwk)


def _header(key) -> dict:
    return {"alg": key.alg, "kid": key.kid, "typ": "JWT"}


def _kid_of(token: str) -> str | None:
    """The kid in a token's header, unverified (only to decide whether to read the keys again)."""
    try:
        header = token.split(".", 1)[0]
        return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))).get("kid")
    except (ValueError, AttributeError, TypeError):
        return None


class KeyRing:
    """The keys in the key store; the newest signs, and retired ones stay published while
    tokens they signed may still be alive."""

    def __init__(self, records: RecordStore, issuer: str, alg: str, max_token_ttl: int):
        self.records = records  # {"jwk", "alg", "created", "retired"} by kid
        self.alg = alg
        self.max_token_ttl = max_token_ttl
        self._freshness = Freshness(records)
        self._seen = None
        self._signer = None
        self._published = None
        self._built_at = float("-inf")
        self._verified: dict[str, dict] = {}  # token -> claims whose signature checked out
        self._verified_for = None  # the KeySet those signatures were checked against
        self._registry = jwt.JWTClaimsRegistry(
            now=lambda: int(clock.timestamp()),
            leeway=LEEWAY,
            iss={"essential": True, "value": issuer},
            exp={"essential": True},
            iat={"essential": True},
        )

    def ensure_key(self) -> None:
        """Make a signing key of the configured algorithm if there is none yet."""
        with self.records.locked():
            current = self._current_record()
            if current is None or current["alg"] != self.alg:
                self._add_new_key(retire=current)

    def rotate(self) -> str:
        """Start signing with a new key; returns its kid."""
        with self.records.locked():
            kid = self._add_new_key(retire=self._current_record())
            self._drop_expired_keys()
            return kid

    def sign(self, claims: dict) -> str:
        key = self._keys()[0]
        return jwt.encode(_header(key), claims, key)

    def header(self) -> dict:
        """The JWT header of what sign() signs now."""
        return _header(self._keys()[0])

    def jwks(self) -> dict:
        return self._keys()[1].as_dict(private=False)

    def verify(self, token: str) -> dict:
        """The claims of a token we signed and that is still in its time; raises InvalidToken.

        A client sends the same token for up to an hour, so a signature once checked is
        remembered (while the published keys stay the same); the times are checked every call.
        A token signed with a key this worker has not seen yet (rotated on another node within
        the last second) makes it read the keys again once.
        """
        published = self._keys()[1]
        try:
            return self._verify(token, published)
        except InvalidToken:
            if _kid_of(token) in {key.kid for key in published.keys}:
                raise
            renewed = self._keys(refresh=True)[1]
            if renewed is published:
                raise
            return self._verify(token, renewed)

    def _verify(self, token: str, published: KeySet) -> dict:
        claims = self._verified.get(token) if self._verified_for is published else None
        try:
            if claims is None:
                claims = jwt.decode(token, published, algorithms=["RS256", "ES256"]).claims
                self._remember(token, claims, published)
            self._registry.validate(claims)
        except (JoseError, ValueError, TypeError) as error:
            raise InvalidToken(str(error)) from error
        return dict(claims)

    def _remember(self, token: str, claims: dict, published) -> None:
        if self._verified_for is not published or len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified, self._verified_for = {}, published
        self._verified[token] = claims

    def _keys(self, refresh: bool = False):
        """(signing key, KeySet of published keys), rebuilt when the key records changed (see
        tickets.oauth.freshness), when asked to, and each minute so retired keys leave the JWKS on time."""
        overdue = clock.monotonic() - self._built_at > REBUILD_EVERY
        if self._freshness.stale() or refresh or overdue:
            fingerprint = tuple(sorted((kid, record.get("retired")) for kid, record in self.records.all().items()))
            if fingerprint != self._seen or overdue:
                current = self._current_record()
                if current is None:
                    raise InvalidToken("no signing key")
                self._signer = _import(current["jwk"])
                self._published = KeySet([_import(record["jwk"]) for record in self._published_records()])
                self._seen, self._built_at = fingerprint, clock.monotonic()
        return self._signer, self._published

    def _current_record(self) -> dict | None:
        live = [record for record in self.records.all().values() if record.get("retired") is None]
        return max(live, key=lambda record: record["created"], default=None)

    def _published_records(self) -> list[dict]:
        horizon = clock.timestamp() - self.max_token_ttl - LEEWAY
        return [
            record
            for record in self.records.all().values()
            if record.get("retired") is None or record["retired"] > horizon
        ]

    def _add_new_key(self, retire: dict | None) -> str:
        now = clock.timestamp()
        if retire is not None:
            self.records.put(retire["jwk"]["kid"], {**retire, "retired": now})
        key = _generate(self.alg)
        self.records.put(key.kid, {"jwk": key.as_dict(private=True), "alg": self.alg, "created": now, "retired": None})
        self._freshness.expire()
        return key.kid

    def _drop_expired_keys(self) -> None:
        keep = {record["jwk"]["kid"] for record in self._published_records()}
        self.records.remove_many([kid for kid in self.records.all() if kid not in keep])
