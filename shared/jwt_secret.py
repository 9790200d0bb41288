"""The HS256 key every token is signed and checked with: refused unless it is a real secret.

Whoever knows the key mints tokens for anyone, admins included. So every entry point that
signs or checks tokens (`chorus api`, the app factory, `chorus worker`, `chorus token`)
refuses to start without one, with one known to the public, or with one too short to be
random. Only `chorus dev` runs without being given one: it makes its own, once per data
directory (`dev_secret`), so even a laptop has no published key.
"""

import os
import secrets
from pathlib import Path

# RFC 7518 §3.2: an HS256 key must be at least as long as the hash, 256 bits.
MIN_SECRET_BYTES = 32
DEV_SECRET_FILE = "jwt-secret"  # noqa: S105  (a file name, not a key)
# Keys printed in this repository's history: the built-in development default of earlier
# releases and compose's old placeholder. Anyone can read them, so nothing may use them.
PUBLIC_SECRETS = frozenset(
    {
        "chorus-dev-secret-change-me-in-production",
        "INSECURE-PLACEHOLDER-set-CHORUS_JWT_SECRET-before-deploying",
    }
)
HOW_TO = "set it to a long random value, e.g. `openssl rand -hex 32`"


class InsecureSecret(ValueError):
    """CHORUS_JWT_SECRET is missing, public or too short; the message says which and why."""


def secret_problem(secret: str) -> str | None:
    """Why `secret` must not sign tokens, or None when it may."""
    if not secret:
        return (
            "CHORUS_JWT_SECRET is not set: it is the key that signs and checks every token "
            f"({HOW_TO}; only `chorus dev` makes one of its own)"
        )
    if secret in PUBLIC_SECRETS:
        return (
            "CHORUS_JWT_SECRET is a published development key: anyone can mint tokens "
            f"with it ({HOW_TO})"
        )
    length = len(secret.encode())
    if length < MIN_SECRET_BYTES:
        return (
            f"CHORUS_JWT_SECRET is too short: {length} bytes, at least {MIN_SECRET_BYTES} "
            f"are needed for HS256 ({HOW_TO})"
        )
    return None


def require_secret(secret: str) -> str:
    """`secret` itself when it may sign tokens; `InsecureSecret` saying why not otherwise."""
    problem = secret_problem(secret)
    if problem is not None:
        raise InsecureSecret(problem)
    return secret


def dev_secret(data_dir: Path) -> str:
    """`chorus dev`'s key: made at random the first time, then read from `data_dir`.

    The file is readable by its owner only. Written beside and linked into place, so two
    `chorus dev` starting at once agree on one key and neither reads a half-written file.
    """
    path = data_dir / DEV_SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        draft = data_dir / f".{DEV_SECRET_FILE}.{os.getpid()}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(32) + "\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another `chorus dev` was first: use its key
        finally:
            draft.unlink()
    secret = path.read_text().strip()
    problem = secret_problem(secret)
    if problem is not None:
        raise InsecureSecret(f"{path}: {problem.replace('CHORUS_JWT_SECRET', 'the key')}")
    return secret
