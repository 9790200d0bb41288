"""Authors' ids for imported comments: `import:<source>:<stable id>`, never personal data.

An author id outlives erasure (decision 33 erases names and bodies; the id is how the log
says who wrote what), so it must not *be* a person's email, name or username: each stable
id is a truncated sha256 of what the source knows about the person, with the kind of
evidence as a prefix (`u` username or user id, `e` email, `n` name) so that two kinds never
collide. 16 hex digits (64 bits): a collision among a million authors has odds of about
one in 40 million. It is pseudonymous, not anonymous (a hash of a known email can be
matched), which is why the email itself never appears anywhere in an import.
"""

import hashlib

from .model import SourceName


def author_id(source: SourceName, kind: str, value: str) -> str:
    """`import:<source>:<kind>-<16 hex>`; `value` is normalised by the caller (an email
    lower-cased, a name stripped)."""
    digest = hashlib.sha256(f"{source}:{kind}:{value}".encode()).hexdigest()[:16]
    return f"import:{source}:{kind}-{digest}"


def anonymous_id(source: SourceName) -> str:
    """The author of a comment the source knows nothing about (no name, no email)."""
    return f"import:{source}:anonymous"
