"""Loading documents: every format in fixtures/good, every bad file in fixtures/bad."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from domainfit.config import SynthConfig
from domainfit.errors import DocumentError
from domainfit.synth.documents import (
    Document,
    DocumentSkipped,
    decode_text,
    load_document,
    load_documents,
    normalize_document_text,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOOD = FIXTURES / "good"
BAD = FIXTURES / "bad"
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"

sys.path.insert(0, str(FIXTURES))
from make_fixtures import (  # noqa: E402
    HTML_NAV_MARKER,
    HTML_SCRIPT_MARKER,
    HTML_STYLE_MARKER,
    KNOWN_SENTENCE,
    LATIN1_TEXT,
    SECOND_SENTENCE,
    UTF16_TEXT,
)


@pytest.fixture(scope="module")
def good() -> dict[str, Document]:
    result = load_documents(GOOD, SynthConfig())
    assert result.skipped == []
    return {document.source: document for document in result.documents}


@pytest.fixture(scope="module")
def bad():
    return load_documents(BAD, SynthConfig())


@pytest.mark.parametrize(
    "name, format_name",
    [
        ("checklist.txt", "txt"),
        ("checklist.md", "md"),
        ("checklist.html", "html"),
        ("checklist.pdf", "pdf"),
        ("checklist.docx", "docx"),
    ],
)
def test_every_good_format_yields_its_known_sentences(good, name, format_name):
    document = good[name]
    assert document.format == format_name
    assert KNOWN_SENTENCE in document.text
    assert SECOND_SENTENCE in document.text
    assert document.source == name
    assert len(document.doc_id) == 16


def test_html_loses_scripts_styles_and_navigation_but_keeps_paragraphs(good):
    text = good["checklist.html"].text
    for marker in (HTML_SCRIPT_MARKER, HTML_STYLE_MARKER, HTML_NAV_MARKER):
        assert marker not in text
    assert "console.log" not in text and "font-family" not in text
    assert text.splitlines()[0] == "Onboarding checklist"
    assert f"{KNOWN_SENTENCE}\n\n{SECOND_SENTENCE}" in text


def test_html_tables_lists_and_breaks_keep_their_structure(tmp_path):
    page = tmp_path / "page.html"
    page.write_text(
        "<html><body><header>Site header</header><div class='cookie-banner'>We use cookies</div>"
        "<h2>Parts</h2><table><tr><th>Part</th><th>Price</th></tr><tr><td>Seal kit</td><td>£145</td></tr></table>"
        "<ul><li>First item</li><li>Second <b>bold</b> item</li></ul><p>Line one<br>Line\n   two</p>"
        "<pre>keep   this\n  layout</pre><!-- a comment --></body></html>",
        encoding="utf-8",
    )
    text = load_document(page, tmp_path, SynthConfig()).text
    assert text == (
        "Parts\n\nPart | Price\nSeal kit | £145\n\nFirst item\n\nSecond bold item\n\n"
        "Line one\nLine two\n\nkeep this\nlayout"
    )


def test_docx_keeps_tables_in_document_order(tmp_path):
    import docx

    document = docx.Document()
    document.add_paragraph("Before the table.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Equipment", "Warranty"
    table.cell(1, 0).text, table.cell(1, 1).text = "Controller", "36 months"
    document.add_paragraph("After the table.")
    document.save(tmp_path / "terms.docx")
    text = load_document(tmp_path / "terms.docx", tmp_path, SynthConfig()).text
    assert text == "Before the table.\n\nEquipment | Warranty\nController | 36 months\n\nAfter the table."


EXPECTED_SKIPS = {
    "empty.txt": "empty file",
    "whitespace.md": "no text (whitespace only)",
    "binary.txt": "binary content",
    "unknown.xyz": "unsupported extension .xyz",
    "encrypted.pdf": "encrypted PDF",
    "truncated.pdf": "truncated or corrupt PDF: ",
    "corrupt.docx": "corrupt DOCX: ",
    "not_a_docx.docx": "not a Word document: ",
}


@pytest.mark.parametrize("name, reason", sorted(EXPECTED_SKIPS.items()))
def test_every_bad_file_is_skipped_with_its_reason(bad, name, reason):
    reasons = {skipped.source: skipped.reason for skipped in bad.skipped}
    assert reasons[name].startswith(reason)
    assert "\n" not in reasons[name]


def test_bad_folder_still_loads_the_readable_files(bad):
    loaded = {document.source: document for document in bad.documents}
    assert sorted(loaded) == ["latin1.txt", "utf16.txt"]
    assert len(bad.skipped) == len(EXPECTED_SKIPS)
    assert bad.skip_reasons()["empty.txt"] == "empty file"


def test_latin1_is_decoded_with_its_accents(bad):
    text = next(d.text for d in bad.documents if d.source == "latin1.txt")
    assert text == normalize_document_text(LATIN1_TEXT)
    for word in ("employés", "Größe", "Übergabe", "Straße", "façade"):
        assert word in text


def test_utf16_with_bom_is_decoded(bad):
    text = next(d.text for d in bad.documents if d.source == "utf16.txt")
    assert text == normalize_document_text(UTF16_TEXT)
    assert "水力発電" in text


@pytest.mark.parametrize(
    "data, expected",
    [
        ("naïve café".encode("utf-8"), "naïve café"),
        ("\ufeffBOM first".encode("utf-8"), "BOM first"),
        ("wide text €".encode("utf-32"), "wide text €"),
        ("Grüße aus Köln, Straße".encode("cp1252"), "Grüße aus Köln, Straße"),
        ("“Quoted” – dash".encode("cp1252"), "“Quoted” – dash"),
    ],
)
def test_decode_text_handles_common_encodings(data, expected):
    assert decode_text(data).lstrip("\ufeff") == expected


def test_control_characters_count_as_binary():
    with pytest.raises(DocumentSkipped, match="binary content"):
        decode_text(bytes(range(1, 32)) * 20)


def test_file_over_the_size_cap_is_skipped(tmp_path):
    (tmp_path / "big.txt").write_text("A long enough line about turbines.\n" * 60, encoding="utf-8")
    (tmp_path / "small.txt").write_text("A short note about turbines.\n", encoding="utf-8")
    result = load_documents(tmp_path, SynthConfig(max_file_mb=0.001))
    assert [d.source for d in result.documents] == ["small.txt"]
    assert result.skipped[0].source == "big.txt"
    assert result.skipped[0].reason == "over size cap (0.002 MB > 0.001 MB)"


def test_walk_is_recursive_sorted_and_skips_hidden(tmp_path):
    for relative in ("b/two.md", "a/one.txt", "a/z/three.txt", ".git/config.txt", "a/.hidden.txt", "zero.txt"):
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"Text of {relative}.\n", encoding="utf-8")
    result = load_documents(tmp_path, SynthConfig())
    assert [d.source for d in result.documents] == ["a/one.txt", "a/z/three.txt", "b/two.md", "zero.txt"]
    assert result.skipped == []


def test_extensions_follow_the_config(tmp_path):
    shutil.copy(GOOD / "checklist.md", tmp_path / "notes.md")
    shutil.copy(GOOD / "checklist.txt", tmp_path / "notes.txt")
    result = load_documents(tmp_path, SynthConfig(extensions=[".txt"]))
    assert [d.source for d in result.documents] == ["notes.txt"]
    assert result.skip_reasons() == {"notes.md": "unsupported extension .md"}


def test_doc_id_is_stable_and_depends_on_the_path_only(tmp_path):
    shutil.copy(GOOD / "checklist.txt", tmp_path / "a.txt")
    first = load_document(tmp_path / "a.txt", tmp_path, SynthConfig())
    (tmp_path / "a.txt").write_text("Changed text.\n", encoding="utf-8")
    second = load_document(tmp_path / "a.txt", tmp_path, SynthConfig())
    assert first.doc_id == second.doc_id
    assert first.doc_id != load_document(GOOD / "checklist.txt", GOOD, SynthConfig()).doc_id


def test_missing_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(DocumentError, match="document folder not found: .*nowhere"):
        load_documents(tmp_path / "nowhere", SynthConfig())


def test_folder_of_only_bad_files_names_the_count_and_reasons(tmp_path):
    for name in ("empty.txt", "binary.txt", "encrypted.pdf", "unknown.xyz"):
        shutil.copy(BAD / name, tmp_path / name)
    with pytest.raises(DocumentError) as error:
        load_documents(tmp_path, SynthConfig())
    message = str(error.value)
    assert "\n" not in message
    assert "4 file(s) skipped" in message
    assert "binary.txt: binary content" in message and "and 1 more" in message


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(DocumentError, match="no files in document folder"):
        load_documents(tmp_path, SynthConfig())


def test_normalize_document_text_keeps_paragraphs_and_collapses_spaces():
    raw = "Title\r\n\r\n\r\n\r\nFirst  line\u00a0with\tspaces \r\nsecond\u200b line\r\n\r\n\u00adLast"
    assert normalize_document_text(raw) == "Title\n\nFirst line with spaces\nsecond line\n\nLast"
    assert normalize_document_text("Cafe\u0301") == "Café"


def test_sample_folder_loads_twelve_documents_without_skips():
    result = load_documents(SAMPLE, SynthConfig())
    assert len(result.documents) == 12
    assert result.skipped == []
    assert {d.format for d in result.documents} == {"txt", "md", "html", "pdf", "docx"}
    faq = next(d for d in result.documents if d.source == "customer-faq.html")
    assert "SCRIPT_SENTINEL" not in faq.text and "Cookie settings" not in faq.text
    assert "E415 means the controller" in faq.text


def test_pdf_without_a_text_layer_is_skipped(tmp_path):
    from reportlab.pdfgen import canvas

    drawing = canvas.Canvas(str(tmp_path / "scan.pdf"), invariant=1)
    drawing.rect(72, 72, 200, 300, fill=1)  # an image-only page: shapes, no text
    drawing.showPage()
    drawing.save()
    with pytest.raises(DocumentSkipped, match=r"^no text layer \(scanned PDF\?\)$"):
        load_document(tmp_path / "scan.pdf", tmp_path, SynthConfig())


def test_pdf_with_only_an_owner_password_is_read(tmp_path):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(GOOD / "checklist.pdf"))
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    with open(tmp_path / "locked.pdf", "wb") as handle:
        writer.write(handle)
    assert KNOWN_SENTENCE in load_document(tmp_path / "locked.pdf", tmp_path, SynthConfig()).text


def test_html_charset_declared_in_a_meta_tag_is_honoured(tmp_path):
    page = '<html><head><meta charset="iso-8859-1"></head><body><p>Größe der Turbine: café</p></body></html>'
    (tmp_path / "legacy.htm").write_bytes(page.encode("latin-1"))
    assert load_document(tmp_path / "legacy.htm", tmp_path, SynthConfig()).text == "Größe der Turbine: café"


def test_a_single_file_can_be_given_instead_of_a_folder():
    result = load_documents(GOOD / "checklist.md", SynthConfig())
    assert [d.source for d in result.documents] == ["checklist.md"]


def _docx_with_document_xml(path: Path, write_document_xml) -> Path:
    """A real python-docx file whose ``word/document.xml`` is replaced by what the callback writes."""
    import zipfile

    import docx

    template = path.with_suffix(".template.docx")
    docx.Document().save(template)
    with zipfile.ZipFile(template) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            if member.filename == "word/document.xml":
                with target.open("word/document.xml", "w") as handle:
                    write_document_xml(handle, source.read(member))
            else:
                target.writestr(member, source.read(member))
    template.unlink()
    return path


def test_a_docx_whose_xml_is_cut_in_half_is_skipped_and_the_run_goes_on(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.txt").write_text("A short note about turbines.\n", encoding="utf-8")
    _docx_with_document_xml(docs / "cut.docx", lambda handle, xml: handle.write(xml[: len(xml) // 2]))
    result = load_documents(docs, SynthConfig())
    assert [d.source for d in result.documents] == ["good.txt"]
    assert result.skip_reasons()["cut.docx"].startswith("corrupt DOCX: broken XML: ")


def _paragraphs(total_bytes: int):
    def write(handle, xml: bytes) -> None:
        head, tail = xml.split(b"<w:body>")
        handle.write(head + b"<w:body>")
        paragraph = b"<w:p><w:r><w:t>" + b"Turbine inspection notes repeat. " * 30 + b"</w:t></w:r></w:p>"
        for _ in range(total_bytes // len(paragraph)):
            handle.write(paragraph)
        handle.write(tail)

    return write


def test_a_small_docx_that_expands_to_200_mb_is_skipped_before_it_is_parsed(tmp_path):
    import time

    bomb = _docx_with_document_xml(tmp_path / "bomb.docx", _paragraphs(200 * 1024 * 1024))
    assert bomb.stat().st_size < 2 * 1024 * 1024
    started = time.perf_counter()
    with pytest.raises(DocumentSkipped, match=r"the archive expands to 200\.\d MB, over the cap of 64\.0 MB"):
        load_document(bomb, tmp_path, SynthConfig())
    assert time.perf_counter() - started < 5


def test_the_expanded_cap_also_bounds_pdf_text(tmp_path):
    pdf = SAMPLE / "annual-report-2023-excerpt.pdf"
    assert load_document(pdf, SAMPLE, SynthConfig()).text
    with pytest.raises(DocumentSkipped, match=r"its text expands to .* MB, over the cap of 0.001 MB"):
        load_document(pdf, SAMPLE, SynthConfig(max_expanded_mb=0.001))
