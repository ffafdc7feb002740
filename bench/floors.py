"""The floors no request can go below on this machine: a durable append, and one RS256 signature."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

RECORD_BYTES = 400  # about one ticket record in the service's log
CLAIMS = {  # shaped like the service's client-credentials token (SPEC section 5)
    "iss": "http://localhost:8080/security",
    "sub": "bench-client-id-0123456789abcdef",
    "client_id": "bench-client-id-0123456789abcdef",
    "org": "bench-org",
    "scope": "global",
    "iat": 1_900_000_000,
    "exp": 1_900_003_600,
    "jti": "bench-jti-0123456789abcdef",
}


def file_system(path: Path) -> str:
    """The type and device of the file system that holds `path` (from /proc/mounts), e.g. "ext4, /dev/vda at /"."""
    best, found = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, kind = line.split()[:3]
            inside = str(path.resolve()).startswith(mount.rstrip("/") + "/") or mount == "/"
            if inside and len(mount) >= len(best):
                best, found = mount, f"{kind}, {device} at {mount}"
    except OSError:
        pass
    return found


def summary(samples: list[float]) -> dict:
    """Min, median and p99 of per-operation times (seconds in), in milliseconds."""
    ordered = sorted(samples)
    return {
        "count": len(ordered),
        "min_ms": ordered[0] * 1000,
        "median_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000,
    }


def disk_floor(folder: Path, count: int = 300) -> dict:
    """Append a ~400-byte record and fdatasync, `count` times, to a file in `folder`; per append."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "floor-append.log"
    record = os.urandom(RECORD_BYTES // 2).hex().encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
    try:
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            os.write(fd, record)
            os.fdatasync(fd)
            samples.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return {**summary(samples), "record_bytes": len(record), "folder": str(folder), "file_system": file_system(folder)}


def crypto_floor(count: int = 300) -> dict:
    """One RS256 JWT signature as the service makes it (joserfc jwt.encode, RSA-2048), `count` times."""
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048, auto_kid=True)
    header = {"alg": "RS256", "kid": key.kid, "typ": "JWT"}
    for _ in range(10):  # warm up
        jwt.encode(header, CLAIMS, key)
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        jwt.encode(header, CLAIMS, key)
        samples.append(time.perf_counter() - started)
    return {**summary(samples), "what": "joserfc jwt.encode, RS256, RSA-2048"}
