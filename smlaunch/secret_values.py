"""Secret-looking environment values: found by name and by shape (JOB008), masked where smlaunch prints them.

    secret_reason("DATABASE_URL", "postgres://app:hunter2@db:5432/x")   # 'its value is a URL with a password in it'
    mask("postgres://app:hunter2@db:5432/x")                             # 'postgres://app:****@db:5432/x'

A value is secret-looking when its name says so (``..._TOKEN``, ``PASSWORD``, ``API_KEY``, ...) or its value has
the shape of a credential: a known token prefix (AWS access key ids, GitHub, Slack, OpenAI-style ``sk-``,
Hugging Face, GitLab), a Slack webhook, a URL with a password in it, or a long random-looking string (Shannon
entropy of at least :data:`ENTROPY_BITS` bits per character over at least :data:`ENTROPY_MIN_CHARS` characters
of a token alphabet). KMS key ids and ARNs are identifiers, not secrets. Reasons never quote the value.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

MASK = "****"

SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL", "CREDENTIALS")
SECRET_COMPOUNDS = {
    "APIKEY": "KEY",
    "ACCESSKEY": "KEY",
    "SECRETKEY": "SECRET",
    "AUTHTOKEN": "TOKEN",
    "PASSPHRASE": "PASSWORD",
}
"""Words of a variable's name (split at non-alphanumerics) that make it a secret, and glued forms of them."""

TOKEN_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Slack webhook", re.compile(r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]+")),
    ("an API key (sk-...)", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}")),
    ("a Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}")),
    ("a GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
)
"""(what it is, pattern) of known credential formats, searched anywhere in the value."""

URL_CREDENTIALS = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)(?P<password>[^@\s/]+)(?P<tail>@)")
"""``scheme://user:password@host``: the password part."""

KMS_VALUE = re.compile(
    r"^(arn:aws[a-z-]*:kms:\S+|alias/\S+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
)

ENTROPY_BITS = 4.0
ENTROPY_MIN_CHARS = 20
RUN_SEPARATORS = re.compile(r"[-_.:@,;?&=#%~\s]+")
"""Where a value's runs end: a key or token is one long run (base64 keeps ``/`` and ``+``); names, dates, paths
and image URIs are many short ones."""


def entropy(text: str) -> float:
    """Shannon entropy of ``text`` in bits per character."""
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def random_looking(value: str) -> bool:
    """The value's longest run (between separators: :data:`RUN_SEPARATORS`) has at least
    :data:`ENTROPY_MIN_CHARS` characters, mixes letters and digits, and carries at least
    :data:`ENTROPY_BITS` bits per character, as generated keys do. Hex digests and UUIDs stay below it (16 symbols
    carry at most 4 bits), and so do words, dates and paths (short or single-case runs)."""
    parts = RUN_SEPARATORS.split(value)
    if "://" in value or value.startswith(("/", "~")):  # a URI or a path: its folders are runs too
        parts = [piece for part in parts for piece in part.split("/")]
    run = max(parts, key=len, default="")
    if len(run) < ENTROPY_MIN_CHARS or re.fullmatch(r"[0-9a-fA-F/]+", run):
        return False
    return bool(re.search("[0-9]", run) and re.search("[A-Za-z]", run)) and entropy(run) >= ENTROPY_BITS


def value_reason(value: str) -> str | None:
    """Why a value alone looks like a credential, or None."""
    for what, pattern in TOKEN_SHAPES:
        if pattern.search(value):
            return f"its value is shaped like {what}"
    if URL_CREDENTIALS.search(value):
        return "its value is a URL with a password in it"
    if random_looking(value):
        return "its value looks randomly generated, like a key or token"
    return None


def name_reason(name: str) -> str | None:
    words = [w for w in re.split(r"[^A-Z0-9]+", name.upper()) if w]
    for word in words:
        if word in SECRET_WORDS:
            return f"its name contains {word}"
        if word in SECRET_COMPOUNDS:
            return f"its name contains {SECRET_COMPOUNDS[word]}"
    return None


def secret_reason(name: str, value: Any) -> str | None:
    """Why an environment variable looks like a secret (never quoting the value), or None."""
    value = "" if value is None else str(value)
    shaped = value_reason(value)
    if shaped and "AWS access key" in shaped:
        return shaped  # even under a KMS-looking name
    words = [w for w in re.split(r"[^A-Z0-9]+", name.upper()) if w]
    if "KMS" in words or KMS_VALUE.match(value.strip()):
        return None  # KMS key ids and ARNs are identifiers, not secrets
    return shaped or (name_reason(name) if value.strip() else None)


def mask(value: Any) -> str:
    """The value with its secret part replaced by :data:`MASK` (a URL keeps all but its password)."""
    text = "" if value is None else str(value)
    if URL_CREDENTIALS.search(text) and not any(p.search(text) for _, p in TOKEN_SHAPES):
        return URL_CREDENTIALS.sub(lambda m: m["head"] + MASK + m["tail"], text)
    return MASK


def masked_environment(env: Mapping[str, Any]) -> dict[str, Any]:
    """``env`` with every secret-looking value masked."""
    return {k: mask(v) if secret_reason(k, v) else v for k, v in env.items()}


def masked_call(payload: dict[str, Any]) -> dict[str, Any]:
    """A rendered call (``{"estimator": {..., "environment": {...}}, ...}``) or a CreateTrainingJob request
    (``{"Environment": {...}}``) with its environment masked; the input is left as it is."""
    out = dict(payload)
    if isinstance(out.get("Environment"), Mapping):
        out["Environment"] = masked_environment(out["Environment"])
    estimator = out.get("estimator")
    if isinstance(estimator, Mapping) and isinstance(estimator.get("environment"), Mapping):
        out["estimator"] = {**estimator, "environment": masked_environment(estimator["environment"])}
    return out
