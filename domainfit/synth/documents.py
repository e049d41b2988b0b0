"""Loading a document folder: one loader per format, plain text out, bad files skipped.

Every file becomes a :class:`Document` (normalised plain text) or a
:class:`SkippedFile` with a one-line reason. A folder of real-world documents always
holds a few files that cannot be read (an encrypted PDF, a scanned one, a stray
binary); they are listed, not fatal: the run goes on with the rest. Parsing is left
to well-kept libraries (BeautifulSoup, pypdf, python-docx, charset-normalizer).

Example::

    result = load_documents(Path("data/sample"), SynthConfig())
    print(len(result.documents), [s.reason for s in result.skipped])
    result.documents[0].text[:80]
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..artifacts import content_hash
from ..config import SynthConfig
from ..errors import DocumentError, first_line

MIB = 1024 * 1024

FORMATS: dict[str, str] = {
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}
"""File extension -> loader name. ``SynthConfig.extensions`` picks which are used."""


@dataclass(frozen=True)
class Document:
    """One readable file as normalised plain text; ``doc_id`` hashes its relative path."""

    doc_id: str
    source: str  # posix path relative to the document folder
    text: str
    format: str  # 'txt', 'md', 'html', 'pdf', 'docx'


@dataclass(frozen=True)
class SkippedFile:
    """A file that was not loaded, and why (one line)."""

    source: str
    reason: str


@dataclass
class LoadResult:
    """The documents of a folder and the files skipped on the way."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)

    def skip_reasons(self) -> dict[str, str]:
        """``{source: reason}`` of the skipped files, for a summary or the manifest."""
        return {skipped.source: skipped.reason for skipped in self.skipped}


class DocumentSkipped(DocumentError):
    """One file cannot be loaded; the message is the reason recorded for it."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- folder


def load_documents(folder: Path, config: SynthConfig, *, progress: bool = False) -> LoadResult:
    """Load every supported file under ``folder`` (recursively, sorted, hidden files ignored).

    Unreadable files land in ``result.skipped`` with their reason. Raises
    :class:`DocumentError` when the folder is missing or yields no document at all.
    A single file may be given instead of a folder.

    Example::

        result = load_documents(Path("docs"), SynthConfig(max_file_mb=10))
        for skipped in result.skipped: print(skipped.source, skipped.reason)
    """
    folder = Path(folder)
    if not folder.exists():
        raise DocumentError(f"document folder not found: {folder}")
    if folder.is_file():
        root, paths = folder.parent, [folder]
    else:
        root, paths = folder, _walk(folder)
    result = LoadResult()
    iterator = paths
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(paths, desc="documents", unit="file")
    for path in iterator:
        try:
            result.documents.append(load_document(path, root, config))
        except DocumentSkipped as skipped:
            result.skipped.append(SkippedFile(_relative(path, root), skipped.reason))
    if not result.documents:
        raise DocumentError(_nothing_readable(folder, result.skipped))
    return result


def _walk(folder: Path) -> list[Path]:
    """Files under ``folder`` sorted by relative path, skipping hidden files and folders."""
    paths = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        paths += [Path(dirpath) / name for name in filenames if not name.startswith(".")]
    return sorted(paths, key=lambda path: path.relative_to(folder).parts)


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _nothing_readable(folder: Path, skipped: list[SkippedFile]) -> str:
    if not skipped:
        return f"no files in document folder {folder}"
    shown = "; ".join(f"{s.source}: {s.reason}" for s in skipped[:3])
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return f"no readable documents in {folder}: {len(skipped)} file(s) skipped ({shown}{more})"


# --------------------------------------------------------------------------- one file


def load_document(path: Path, root: Path, config: SynthConfig) -> Document:
    """Load one file as a :class:`Document`; raises :class:`DocumentSkipped` with the reason.

    Example::

        doc = load_document(Path("docs/a.pdf"), Path("docs"), SynthConfig())
        doc.source, doc.format            # ('a.pdf', 'pdf')
    """
    path, root = Path(path), Path(root)
    source = _relative(path, root)
    suffix = path.suffix.lower()
    allowed = {extension.lower() for extension in config.extensions}
    if suffix not in FORMATS or suffix not in allowed:
        raise DocumentSkipped(f"unsupported extension {suffix}" if suffix else "no file extension")
    try:
        size = path.stat().st_size
    except OSError as error:
        raise DocumentSkipped(f"cannot read file: {error.strerror or error}") from None
    if size > config.max_file_mb * MIB:
        raise DocumentSkipped(f"over size cap ({_mb(size / MIB)} MB > {_mb(config.max_file_mb)} MB)")
    if size == 0:
        raise DocumentSkipped("empty file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DocumentSkipped(f"cannot read file: {error.strerror or error}") from None
    format_name = FORMATS[suffix]
    text = normalize_document_text(_LOADERS[format_name](data, math.ceil(config.max_expanded_mb * MIB)))
    if not text:
        raise DocumentSkipped("no text (whitespace only)" if format_name in ("txt", "md") else "no text")
    return Document(doc_id=content_hash(source), source=source, text=text, format=format_name)


def _mb(value: float) -> str:
    return f"{value:.1f}" if value >= 1 else f"{value:.3g}"


# --------------------------------------------------------------------------- text


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
# Legacy code pages that decode Western text; on a near-tie they win, because
# charset-normalizer's guess between similar single-byte code pages is a coin flip
# on short texts and Latin-1/Windows-1252 is by far the likeliest in practice.
_WESTERN = {"cp1252", "latin_1", "iso8859_15"}
_WESTERN_MARGIN = 0.05
_MAX_CONTROL_RATIO = 0.05


def decode_text(data: bytes) -> str:
    """Bytes of a text file as str: BOM, then UTF-8, then charset-normalizer, then Latin-1.

    Raises :class:`DocumentSkipped` ('binary content') for NUL bytes without a UTF-16/32
    BOM, or when the decoded text is mostly control characters.

    Example::

        decode_text("café".encode("latin-1"))   # 'café'
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return _reject_binary(data.decode(encoding))
            except UnicodeDecodeError:
                raise DocumentSkipped(f"invalid {encoding.upper()} text after its byte-order mark") from None
    if b"\x00" in data:
        raise DocumentSkipped("binary content")
    try:
        return _reject_binary(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    return _reject_binary(_detect_legacy(data))


def _detect_legacy(data: bytes) -> str:
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        return data.decode("latin-1")
    best = matches[0]
    for match in matches:
        western = match.encoding in _WESTERN or _WESTERN & set(match.could_be_from_charset)
        if western and match.chaos <= best.chaos + _WESTERN_MARGIN:
            return data.decode("cp1252", errors="strict") if _cp1252_ok(data) else data.decode("latin-1")
    return str(best)


def _cp1252_ok(data: bytes) -> bool:
    try:
        data.decode("cp1252")
    except UnicodeDecodeError:
        return False
    return True


def _reject_binary(text: str) -> str:
    if not text:
        return text
    controls = sum(
        1 for char in text if (unicodedata.category(char) == "Cc" and char not in "\t\n\r\f\v") or char == "\ufffd"
    )
    if controls / len(text) > _MAX_CONTROL_RATIO:
        raise DocumentSkipped("binary content")
    return text


_HORIZONTAL_SPACE = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))


def normalize_document_text(text: str) -> str:
    """NFC, Unix newlines, single spaces, at most one blank line between paragraphs.

    Example::

        normalize_document_text("a\\r\\n\\r\\n\\r\\nb   c ")   # 'a\\n\\nb c'
    """
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = text.translate(_INVISIBLE)
    text = "".join(
        char if char in "\n\t" or unicodedata.category(char) != "Cc" else " " for char in text
    )
    lines = [_HORIZONTAL_SPACE.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


# --------------------------------------------------------------------------- loaders


def _load_plain(data: bytes, max_expanded: int) -> str:
    return decode_text(data)


_DROP_TAGS = (
    "script", "style", "noscript", "nav", "header", "footer", "template",
    "svg", "canvas", "iframe", "object", "button", "form", "select", "head",
)  # fmt: skip
_DROP_ROLES = {"navigation", "banner", "contentinfo", "search"}
_DROP_CLASS = re.compile(r"cookie|breadcrumb|skip-link", re.IGNORECASE)
_BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "caption", "dd", "details", "dialog", "div",
    "dl", "dt", "fieldset", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "li", "main", "ol", "p", "pre", "section", "summary", "table",
    "ul", "body",
}  # fmt: skip
_CELL_TAGS = {"td", "th"}
_HTML_SPACE = re.compile(r"\s+")


def _load_html(data: bytes, max_expanded: int) -> str:
    """Visible text of an HTML page, one paragraph per block element, cells joined by ' | '."""
    from bs4 import BeautifulSoup, Comment, Declaration, Doctype, ProcessingInstruction, Tag

    if b"\x00" in data[:1024] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DocumentSkipped("binary content")
    soup = BeautifulSoup(data, "html.parser")
    for element in soup.find_all(_DROP_TAGS):
        element.decompose()
    for element in soup.find_all(True):
        if element.decomposed or not isinstance(element, Tag) or element.attrs is None:
            continue
        classes = " ".join(element.get("class") or []) + " " + str(element.get("id") or "")
        if (
            element.get("role") in _DROP_ROLES
            or element.has_attr("hidden")
            or element.get("aria-hidden") == "true"
            or _DROP_CLASS.search(classes)
        ):
            element.decompose()

    parts: list[str] = []
    skip_types = (Comment, Declaration, Doctype, ProcessingInstruction)

    def walk(node: Tag, preformatted: bool) -> None:
        for child in node.children:
            if isinstance(child, Tag):
                name = child.name
                if name == "br":
                    parts.append("\n")
                elif name in _CELL_TAGS:
                    parts.append(" | ")
                    walk(child, preformatted)
                elif name == "tr":
                    parts.append("\n")
                    walk(child, preformatted)
                elif name in _BLOCK_TAGS:
                    parts.append("\n\n")
                    walk(child, preformatted or name == "pre")
                    parts.append("\n\n")
                else:
                    walk(child, preformatted)
            elif not isinstance(child, skip_types):
                parts.append(str(child) if preformatted else _HTML_SPACE.sub(" ", str(child)))

    walk(soup.body or soup, False)
    lines = []
    for line in "".join(parts).split("\n"):
        line = line.strip()
        lines.append(line.strip("| ").strip() if line.startswith("|") else line)
    return "\n".join(lines)


def _load_pdf(data: bytes, max_expanded: int) -> str:
    """The text layer of every page, pages separated by a blank line."""
    with _quiet_logger("pypdf"):
        pages = _pdf_pages(data, max_expanded)
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise DocumentSkipped("no text layer (scanned PDF?)")
    return text


def _pdf_pages(data: bytes, max_expanded: int) -> list[str]:
    """Page texts, stopped once they pass ``max_expanded`` characters (a decompression bomb)."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")  # an owner-password-only PDF opens with no password
            except DependencyError:
                raise DocumentSkipped("encrypted PDF (decrypting it needs the 'cryptography' package)") from None
            if not opened:
                raise DocumentSkipped("encrypted PDF")
        pages, total = [], 0
        for page in reader.pages:
            pages.append(page.extract_text() or "")
            total += len(pages[-1])
            if total > max_expanded:
                raise DocumentSkipped(_over_expanded_cap("its text", total, max_expanded))
        return pages
    except FileNotDecryptedError:
        raise DocumentSkipped("encrypted PDF") from None
    except LimitReachedError as error:
        raise DocumentSkipped(f"a PDF stream expands past pypdf's safety limit: {first_line(error, 160)}") from None
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as error:
        raise DocumentSkipped(f"truncated or corrupt PDF: {first_line(error, 160)}") from None


@contextlib.contextmanager
def _quiet_logger(name: str):
    """Silence a library's warnings (pypdf logs one per odd object) while it parses."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _over_expanded_cap(what: str, size: int, cap: int) -> str:
    return f"{what} expands to {_mb(size / MIB)} MB, over the cap of {_mb(cap / MIB)} MB (synth.max_expanded_mb)"


def _check_zip_expansion(data: bytes, max_expanded: int) -> None:
    """Refuse a zip whose members expand past ``max_expanded`` bytes, before any is inflated.

    The sizes come from the central directory; ``zipfile`` stops reading a member
    at its declared size (a lying header fails its CRC), so they bound the work.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            total = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as error:
        raise DocumentSkipped(f"corrupt DOCX: {first_line(error, 160)}") from None
    if total > max_expanded:
        raise DocumentSkipped(_over_expanded_cap("the archive", total, max_expanded))


def _load_docx(data: bytes, max_expanded: int) -> str:
    """Paragraphs and tables in document order; table cells joined by ' | '."""
    import zlib

    import docx
    from docx.opc.exceptions import OpcError
    from docx.table import Table
    from lxml.etree import LxmlError

    if zipfile.is_zipfile(io.BytesIO(data)):
        _check_zip_expansion(data, max_expanded)
    try:
        document = docx.Document(io.BytesIO(data))
        blocks = []
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                blocks.append(_docx_table(block))
            else:
                blocks.append(block.text)
    except zipfile.BadZipFile as error:
        raise DocumentSkipped(f"corrupt DOCX: {first_line(error, 160)}") from None
    except (OpcError, KeyError) as error:
        if not zipfile.is_zipfile(io.BytesIO(data)):
            raise DocumentSkipped("corrupt DOCX: not a valid zip archive") from None
        raise DocumentSkipped(f"not a Word document: {first_line(error, 160)}") from None
    except LxmlError as error:  # a part cut short or not XML at all (XMLSyntaxError)
        raise DocumentSkipped(f"corrupt DOCX: broken XML: {first_line(error, 160)}") from None
    except (ValueError, AttributeError, OSError, EOFError, zlib.error, NotImplementedError) as error:
        raise DocumentSkipped(f"corrupt DOCX: {first_line(error, 160)}") from None
    return "\n\n".join(block for block in blocks if block.strip())


def _docx_table(table) -> str:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = " ".join(cell.text.split())
            if not cells or cells[-1] != text:  # merged cells repeat their text
                cells.append(text)
        rows.append(" | ".join(cells))
    return "\n".join(rows)


_LOADERS: dict[str, Callable[[bytes, int], str]] = {
    "txt": _load_plain,
    "md": _load_plain,
    "html": _load_html,
    "pdf": _load_pdf,
    "docx": _load_docx,
}
