"""Escaping of untrusted text (model outputs, inputs, references, names) for Markdown pages.

Every value a template prints passes through ``markdown_safe``, the Jinja
``finalize`` hook. It turns HTML specials and the characters that Markdown or
its extensions act on into numeric character references. The text then
renders literally and can neither open a tag nor form a link or table cell.
Long text goes into ``<pre>`` blocks through ``pre_text``, which keeps newlines.
"""

from __future__ import annotations

import numbers
import re
from typing import Any

from markupsafe import Markup, escape

# Python-Markdown uses STX/ETX as placeholder markers; stripping C0 controls
# (except tab and newline) stops text from forging a placeholder.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_MARKDOWN_SPECIALS = {ord(ch): f"&#{ord(ch)};" for ch in "\\`*[](){}<>#+!|~^$\"'&"}
_TITLE_UNSAFE = re.compile(r"[<>&\"'`\\{}\[\]|*_#!]")


def clean(text: Any) -> str:
    """Return ``text`` as a string without control characters (CR becomes a newline)."""
    value = "" if text is None else str(text)
    return _CONTROL.sub("\ufffd", value.replace("\r\n", "\n").replace("\r", "\n"))


def markdown_safe(value: Any) -> Markup:
    """Return ``value`` as inert inline text for a Markdown page (one line, all specials escaped)."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return Markup("")
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        # Counts, including numpy integers from pandas: digits grouped by thousands on every page.
        return Markup(f"{int(value):,}")
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return Markup(str(float(value)))
    text = clean(value).replace("\n", " ").replace("\t", " ")
    return Markup(text.translate(_MARKDOWN_SPECIALS))


def pre_text(value: Any) -> Markup:
    """Return ``value`` HTML-escaped for a ``<pre>`` element inside a raw HTML block.

    Newlines stay; blank lines become a line with a single space so the raw block
    is never split by Markdown's block parser.
    """
    text = clean(value)
    text = re.sub(r"\n[ \t]*(?=\n)", "\n ", text)
    return Markup(str(escape(text)).replace("{", "&#123;").replace("}", "&#125;"))


def safe_title(value: Any) -> str:
    """Return ``value`` stripped of characters that could act as markup in a page title or nav entry."""
    text = clean(value).replace("\n", " ")
    return _TITLE_UNSAFE.sub("", text).strip()[:120] or "untitled"


def html_title(value: Any) -> str:
    """Return ``value`` on one line with HTML specials escaped, for a page title in front matter.

    MkDocs 1.6 with Material 9 puts the front-matter title into ``<title>``, the header and the nav without
    escaping it, so the escaped text shows every character of the name literally.
    """
    text = " ".join(clean(value).split())
    return str(escape(text)).replace("{", "&#123;").replace("}", "&#125;") or "untitled"


def bibtex_text(value: Any) -> str:
    """Return ``value`` with BibTeX specials escaped, for a field in braces."""
    text = clean(value).replace("\n", " ")
    for ch in "\\{}%&$#_^~":
        text = text.replace(ch, "\\" + ch if ch not in "\\^~" else "")
    return text
