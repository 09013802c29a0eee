"""Safe file names: a name chosen by someone else (an uploader, a sender, a binding)
made fit to store, attach or offer as a download."""

from __future__ import annotations

import unicodedata

MAX_LENGTH = 200
#: Characters Windows refuses in a name; replaced so a download saves everywhere.
FORBIDDEN = frozenset('<>:"/\\|?*')


def safe_filename(name: str, fallback: str) -> str:
    """``name`` without a path, control, format (bidi) or line separator characters,
    forbidden characters or leading dots, at most MAX_LENGTH characters; ``fallback``
    when nothing is left.

    Bidi overrides (U+202E) would let "invoice\u202egpj.exe" display as "invoiceexe.jpg";
    leading dots would make a hidden file, or "..".
    """
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        "_" if char in FORBIDDEN else char
        for char in name
        if unicodedata.category(char) not in ("Cc", "Cf", "Zl", "Zp")
    )
    name = name.strip().lstrip(".").strip()
    return name[:MAX_LENGTH] or fallback
