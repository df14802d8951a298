"""Email addresses as mail systems accept them, and the key two spellings of one address share.

RFC 5322 local parts (dot-atom of any atext, `'` and `+` included, or a quoted string), RFC 6531
non-ASCII local parts and internationalised (IDNA) domains. Two addresses are the same person when
their keys match: local part lower-cased, domain in its IDNA (punycode, lower-case) form, so
`jörg@bücher.de` and `Jörg@xn--bcher-kva.de` are one member. Domain literals (`@[10.0.0.1]`) and
single-label domains are refused: no one's work email has them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import idna

if TYPE_CHECKING:  # numpy and pyarrow only where a column is keyed: a flow checking one address
    import numpy as np  # (every customer's, at import of the flows) does not load them (issue 24)
    import pyarrow as pa

# Unicode spaces are never part of an address; the rest of non-ASCII is (RFC 6531 UTF8-non-ascii).
# The pattern is shared by Python's `re` and arrow's RE2, so characters above U+00FF are literal.
_SPACES = "\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff"
# atext: printable ASCII but the specials ( ) < > [ ] : ; @ \ , . " and space, plus non-ASCII.
_ATEXT = r"[^\x00-\x20\x22\x28\x29\x2c\x2e\x3a-\x3c\x3e\x40\x5b-\x5d\x7f-\xa0" + _SPACES + "]"
_QUOTED = r'"(?:[^"\\\x00-\x1f\x7f' + _SPACES + r"]|\\[\x20-\x7e])*\""
_LOCAL = rf"(?:{_ATEXT}+(?:\.{_ATEXT}+)*|{_QUOTED})"
# A label letter: an ASCII letter or digit, or any non-ASCII character IDNA is left to judge.
_LCHAR = r"[^\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\xa0" + _SPACES + "]"
_LABEL = rf"{_LCHAR}(?:(?:{_LCHAR}|-){{0,61}}{_LCHAR})?"
ADDRESS_PATTERN = rf"^{_LOCAL}@{_LABEL}(?:\.{_LABEL})+$"
_ADDRESS = re.compile(ADDRESS_PATTERN)
_ASCII_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_ASCII_DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_ASCII_LABEL}(?:\.{_ASCII_LABEL})+$")
MAX_BYTES = 254  # RFC 5321: the longest path a mail system relays


def ascii_domain(domain: str) -> str | None:
    """The domain in its IDNA form (lower case, non-ASCII labels as xn--…), None when it is not a valid
    domain. Plain ASCII labels are kept as they are (some real domains have `--` inside)."""
    labels = []
    for label in domain.lower().split("."):
        if label.isascii() and not label.startswith("xn--"):
            labels.append(label)
            continue
        try:
            labels.append(idna.encode(label, uts46=True).decode("ascii"))
        except (idna.IDNAError, UnicodeError):
            return None
    result = ".".join(labels)
    return result if _ASCII_DOMAIN.match(result) else None


def _split(address: str) -> tuple[str, str]:
    local, _, domain = address.rpartition("@")
    return local, domain


def is_address(value: str) -> bool:
    """Whether `value` (already trimmed) is an address a mail system accepts."""
    if not _ADDRESS.match(value) or len(value.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        return False
    domain = _split(value)[1]
    return (domain.isascii() and "xn--" not in domain.lower()) or ascii_domain(domain) is not None


def address_key(value: str) -> str:
    """The key two spellings of one address share; an invalid address keys by its trimmed lower case,
    so a row rejected for its email still protects the member it names."""
    key = value.strip().lower()
    if not is_address(key):
        return key
    local, domain = _split(key)
    return f"{local}@{ascii_domain(domain) or domain}"


def _valid(key: pa.Array) -> np.ndarray:
    import pyarrow.compute as pc

    valid: np.ndarray = pc.match_substring_regex(key, ADDRESS_PATTERN).to_numpy(zero_copy_only=False)
    valid &= pc.less_equal(pc.binary_length(key), MAX_BYTES).to_numpy(zero_copy_only=False)
    return valid


def _may_contain(strings: pa.Array, needle: bytes) -> bool:
    """Whether any value may hold `needle`: one search of the data buffer (a third of the time of a
    per-row match; the buffer can hold bytes beyond the array's slice, so a hit is only a maybe)."""
    data = strings.buffers()[2]
    return data is not None and re.search(re.escape(needle), memoryview(data)) is not None


def address_keys(emails: pa.Array, validate: bool = True) -> tuple[pa.Array, np.ndarray]:
    """`address_key` and `is_address` of a column of trimmed addresses, vectorised: one RE2 pass;
    only rows with a non-ASCII or xn-- domain go through IDNA, once per distinct domain. Without
    `validate` (keys only: the member export) only those rows are matched against the pattern, and
    the validity returned is theirs alone."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    key = pc.utf8_lower(emails)
    special = ~pc.string_is_ascii(key).to_numpy(zero_copy_only=False)
    if _may_contain(key, b"xn--"):
        special |= pc.match_substring(key, "xn--").to_numpy(zero_copy_only=False)
    if validate:
        valid = _valid(key)
    else:
        valid = np.zeros(len(key), bool)
        candidates = np.nonzero(special)[0]
        valid[candidates] = _valid(key.take(pa.array(candidates, pa.int64())))
    rows = np.nonzero(special & valid)[0]
    if not len(rows):
        return key, valid
    parts = pc.split_pattern(key.take(pa.array(rows)), "@", max_splits=1, reverse=True)
    local, domain = pc.list_element(parts, 0), pc.dictionary_encode(pc.list_element(parts, 1))
    normalised = [ascii_domain(d) for d in domain.dictionary.to_pylist()]
    ok = np.array([d is not None for d in normalised], bool)[domain.indices.to_numpy()]
    valid[rows[~ok]] = False
    ascii_text = pa.array([d or "" for d in normalised], pa.string()).take(domain.indices)
    keys = pc.binary_join_element_wise(local, ascii_text, "@")
    mask = np.zeros(len(key), bool)
    mask[rows[ok]] = True
    key = pc.replace_with_mask(key, pa.array(mask), keys.filter(pa.array(ok)))
    return key, valid
