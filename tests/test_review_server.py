"""The review page over HTTP, against the real uvicorn server on a synth-shaped run.

The run is built here the way ``synth`` leaves one: ``chunks.parquet`` (sections of
the sample documents, plus one hostile chunk full of HTML and ``<script>``),
``pairs.jsonl`` and ``rejected.jsonl``, written with the artifacts helpers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from domainfit.artifacts import (
    Chunk,
    Pair,
    Reject,
    RunDir,
    append_jsonl,
    content_hash,
    pair_id_for,
    read_jsonl,
    read_manifest,
    write_chunks,
    write_jsonl,
)
from domainfit.errors import ReviewError
from domainfit.review import reviewed_pairs
from domainfit.review.server import ReviewServer

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"

HOSTILE_SOURCE = "vendor-newsletter.html"
HOSTILE_TEXT = (
    "<h1>Controls newsletter</h1>\n"
    "<script>window.__reviewXss = 1; alert(1)</script>\n"
    '<img src="x" onerror="window.__reviewXss = 2">\n'
    "<b>Firmware 3.5.1</b> fixes the soft-deflector delay & adds a load-rejection self-test.\n"
    "</div></pre></textarea><!-- close everything -->"
)

# (source file, heading of the section that becomes the chunk)
SECTIONS = [
    ("information-security-policy.md", "## 3. Accounts and passwords"),
    ("information-security-policy.md", "### 4.1 Removable media"),
    ("information-security-policy.md", "## 6. Operational technology"),
    ("postmortem-2024-03-kelda-falls-overspeed.md", "## Summary"),
    ("postmortem-2024-03-kelda-falls-overspeed.md", "## Root cause"),
    ("travel-and-expense-policy.md", "### 2.1 Rail"),
    ("travel-and-expense-policy.md", "### 2.3 Hotels"),
    ("travel-and-expense-policy.md", "### 2.4 Private cars and mileage"),
]

# (section index or -1 for the hostile chunk, question, evidence)
QUESTIONS = [
    (0, "How long must a password for a company account be?", "Passwords for company accounts must be at least 14 characters long."),
    (0, "Which accounts must sign in with a hardware security key instead of phone push approval?",
     "Administrators and anyone with access to OT systems must use a hardware security key"),
    (0, "Within how many hours must a lost security key be reported?", "A lost security key must be reported to the IT Service Desk within 4 hours."),
    (1, "What kind of USB drive do field engineers use to move NCX-400 firmware files?",
     "issued a registered, hardware-encrypted Kingston IronKey drive"),
    (2, "How long can a remote support session through the Harbour jump host stay open?", "is closed automatically after 8 hours"),
    (3, "Why was the deflector command issued late during the Kelda Falls load rejection?",
     "a defect in NCX-400 firmware version 3.4.0 caused the deflector command to be issued 1.9 seconds late"),
    (3, "How long was the total outage after the overspeed trip at Kelda Falls?", "a total outage of 9 hours and 40 minutes"),
    (4, "Why did testing not catch the soft-deflector defect in firmware 3.4.0?",
     "the hardware-in-the-loop test for load rejection was run with the soft-deflector feature disabled"),
    (5, "When may I travel first class by rail?", "First class is allowed only when the scheduled journey time is more than 3 hours one way"),
    (6, "What is the nightly hotel room-rate cap in London?", "| London | £180 |"),
    (7, "What mileage rate can I claim for my own car after the first 10,000 business miles?", "25p per mile after that"),
    (-1, "What does firmware <b>3.5.1</b> fix?", "<b>Firmware 3.5.1</b> fixes the soft-deflector delay"),
]

# (section index or -1, question or None, evidence, reason): synth's reason codes
REJECTS = [
    (0, "What does the policy say?", "This policy covers", "too_short"),
    (3, "How many MWh of generation did Kelda Community Energy lose in the outage?",
     "an estimated 11.6 GWh of lost generation", "ungrounded"),
    (-1, "<script>alert('q')</script> What is new in the newsletter?", "<h1>Controls newsletter</h1>", "copy"),
    (5, None, None, "unparseable: the answer was not valid JSON"),
]


@dataclass
class ReviewFixture:
    run: RunDir
    pair_ids: list[str]
    reject_ids: list[str]
    hostile_chunk_id: str


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    level = heading.split(" ")[0]
    ends = [text.find("\n## ", start + len(heading))]
    if level == "###":
        ends.append(text.find("\n### ", start + len(heading)))
    ends = [end for end in ends if end > 0]
    return text[start : min(ends) if ends else len(text)].strip()


def make_review_run(root: Path) -> ReviewFixture:
    """A run as synth leaves it: 9 chunks, 12 pairs, 4 rejects (3 with a question)."""
    run = RunDir(root).ensure()
    chunks = []
    for source, heading in SECTIONS:
        document = (SAMPLE / source).read_text(encoding="utf-8")
        text = _section(document, heading)
        start = document.index(text)
        chunks.append(
            Chunk(
                chunk_id=content_hash(source, text),
                doc_id=content_hash(source),
                source=source,
                text=text,
                char_start=start,
                char_end=start + len(text),
                n_tokens=round(len(text.split()) * 1.3),
            )
        )
    hostile = Chunk(
        chunk_id=content_hash(HOSTILE_SOURCE, HOSTILE_TEXT),
        doc_id=content_hash(HOSTILE_SOURCE),
        source=HOSTILE_SOURCE,
        text=HOSTILE_TEXT,
        char_start=0,
        char_end=len(HOSTILE_TEXT),
        n_tokens=40,
    )
    chunks.append(hostile)
    write_chunks(run.chunks, chunks)

    generator = {"model": "gemma-3-270m-it-Q4_K_M.gguf", "prompt_version": "synth-v1", "prompt_style": "completion"}
    pairs = []
    for index, (section, query, evidence) in enumerate(QUESTIONS):
        chunk = chunks[section]
        checks = {  # what synth's AnswerChecker records for an accepted question
            "well_formed": True,
            "question_tokens": round(len(query.split()) * 1.25),
            "grounding": 0.9412 if "9 hours and 40" in evidence else 1.0,
            "copy_overlap": round(0.04 + index / 97, 4),
            "not_duplicate": True,
            "roundtrip_rank": 1 + index % 3,
        }
        pairs.append(
            Pair(
                pair_id=pair_id_for(chunk.chunk_id, query),
                chunk_id=chunk.chunk_id,
                query=query,
                evidence=evidence,
                generator=generator,
                checks=checks,
            )
        )
    write_jsonl(run.pairs, pairs)

    rejects = [
        Reject(
            chunk_id=chunks[section].chunk_id,
            query=query,
            reason=reason,
            raw=json.dumps({"question": query, "evidence": evidence}) if query else '{"questions": [{"quest',
        )
        for section, query, evidence, reason in REJECTS
    ]
    append_jsonl(run.rejected, rejects)
    reject_ids = [pair_id_for(r.chunk_id, r.query) for r in rejects if r.query]
    return ReviewFixture(run, [pair.pair_id for pair in pairs], reject_ids, hostile.chunk_id)


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def fixture_run(tmp_path: Path) -> ReviewFixture:
    return make_review_run(tmp_path / "run")


@contextmanager
def served(run: RunDir, **kwargs) -> Iterator[tuple[ReviewServer, httpx.Client]]:
    """A real uvicorn server on a free loopback port and a client that sends its token."""
    with ReviewServer(run, **kwargs) as server:
        with httpx.Client(
            base_url=server.base_url, params={"token": server.token}, headers={"X-Review-Token": server.token}, timeout=10
        ) as client:
            yield server, client


def post(client: httpx.Client, pair_id: str, decision: str, edited_query: str | None = None) -> httpx.Response:
    body = {"pair_id": pair_id, "decision": decision}
    if edited_query is not None:
        body["edited_query"] = edited_query
    return client.post("/api/decisions", json=body)


def statuses(client: httpx.Client) -> dict[str, tuple[str, str]]:
    response = client.get("/api/state")
    response.raise_for_status()
    return {item["pair_id"]: (item["status"], item["query"]) for item in response.json()["items"]}


def review_lines(run: RunDir) -> list[dict]:
    return read_jsonl(run.review) if run.review.exists() else []


pytestmark = pytest.mark.slow


# --------------------------------------------------------------------------- the page


def test_page_shows_every_pair_and_document_html_as_text(fixture_run):
    with served(fixture_run.run) as (server, client):
        response = client.get("/")
    assert response.status_code == 200
    html = response.text
    for pair_id in [*fixture_run.pair_ids, *fixture_run.reject_ids]:
        assert f'data-id="{pair_id}"' in html
    assert "<script>window.__reviewXss" not in html and "<script>alert" not in html
    assert '<img src="x"' not in html and "<b>Firmware" not in html
    assert "&lt;script&gt;window.__reviewXss = 1; alert(1)&lt;/script&gt;" in html
    assert "What does firmware &lt;b&gt;3.5.1&lt;/b&gt; fix?" in html
    assert "<mark>&lt;b&gt;Firmware 3.5.1&lt;/b&gt; fixes the soft-deflector delay</mark>" in html
    assert "<mark>Passwords for company accounts must be at least 14 characters long.</mark>" in html
    assert "ungrounded" in html and "roundtrip_rank" in html
    assert html.count("<script") == 1  # only the page's own script file
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_static_assets_are_local_and_guarded(fixture_run):
    with served(fixture_run.run) as (server, client):
        script = client.get("/static/review.js")
        style = client.get("/static/review.css")
        anonymous = httpx.get(f"{server.base_url}/static/review.js")
    assert script.status_code == 200 and "textContent" in script.text and "innerHTML" not in script.text
    assert style.status_code == 200 and "http" not in style.text
    assert anonymous.status_code == 401


# --------------------------------------------------------------------------- decisions


def test_decisions_persist_across_restart_and_latest_wins(fixture_run):
    first, second, third = fixture_run.pair_ids[:3]
    with served(fixture_run.run) as (_, client):
        assert post(client, first, "reject").status_code == 200
        assert post(client, first, "accept").status_code == 200
        assert post(client, second, "reject").status_code == 200
        response = post(client, third, "edit", "  What is the minimum password length for company accounts?  ")
        assert response.status_code == 200
        assert response.json()["item"]["status"] == "edited"
        before = statuses(client)
        counts = client.get("/api/state").json()["counts"]
    assert counts["accepted"] == 1 and counts["rejected"] == 1 and counts["edited"] == 1 and counts["reviewed"] == 3
    assert [row["decision"] for row in review_lines(fixture_run.run)] == ["reject", "accept", "reject", "edit"]

    with served(fixture_run.run) as (_, client):
        after = statuses(client)
        assert post(client, first, "reset").status_code == 200
    assert after == before
    assert after[first][0] == "accepted" and after[second][0] == "rejected"
    assert after[third] == ("edited", "What is the minimum password length for company accounts?")
    with served(fixture_run.run) as (_, client):
        assert statuses(client)[first][0] == "unreviewed"


def test_fifty_concurrent_posts_lose_nothing(fixture_run):
    ids = fixture_run.pair_ids
    choices = ["accept", "reject", "edit"]
    requests = [
        (ids[n % len(ids)], choices[n % 3], f"Concurrent edit number {n}?" if n % 3 == 2 else None) for n in range(50)
    ]
    with served(fixture_run.run) as (_, client):
        go = threading.Event()

        def send(request):
            go.wait(timeout=10)
            return post(client, *request).status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            futures = [pool.submit(send, request) for request in requests]
            go.set()  # 16 workers now post at once, the rest as soon as one returns
            codes = [future.result() for future in futures]
        live = statuses(client)
    assert codes == [200] * 50
    lines = review_lines(fixture_run.run)
    assert len(lines) == 50
    assert sorted((r["pair_id"], r["decision"], r["edited_query"]) for r in lines) == sorted(requests)
    with served(fixture_run.run) as (_, client):
        assert statuses(client) == live


def test_rejected_pairs_never_reach_training_and_edits_replace_the_question(fixture_run):
    from domainfit.config import SplitConfig
    from domainfit.splits import SPLIT_NAMES, ensure_splits

    run = fixture_run.run
    rejected, edited = fixture_run.pair_ids[1], fixture_run.pair_ids[5]
    new_question = "What made the deflector command 1.9 seconds late at Kelda Falls?"
    with served(run) as (_, client):
        assert post(client, rejected, "reject").status_code == 200
        assert post(client, edited, "edit", new_question).status_code == 200
        exported = [json.loads(line) for line in client.get("/export.jsonl").text.splitlines()]
        decided = [json.loads(line) for line in client.get("/export.jsonl", params={"scope": "decided"}).text.splitlines()]

    pairs, summary = reviewed_pairs(run)
    by_id = {pair.pair_id: pair for pair in pairs}
    assert rejected not in by_id
    assert by_id[edited].query == new_question and by_id[edited].checks["edited"] is True
    assert len(pairs) == len(fixture_run.pair_ids) - 1
    assert (summary.reviewed, summary.rejected, summary.edited) == (2, 1, 1)
    assert [row["pair_id"] for row in exported] == [pair.pair_id for pair in pairs]
    assert [row["pair_id"] for row in decided] == [edited]

    splits = ensure_splits(run, SplitConfig())
    split_ids = {pair_id for name in SPLIT_NAMES for pair_id in splits.ids(name)}
    assert rejected not in split_ids and edited in split_ids


def test_rescue_turns_an_auto_reject_into_a_pair(fixture_run):
    run = fixture_run.run
    vague, grounded, hostile = fixture_run.reject_ids
    better = "How much generation (MWh) did Kelda Community Energy lose?"
    with served(run) as (_, client):
        assert post(client, grounded, "rescue").status_code == 200
        response = post(client, hostile, "edit", better)
        assert response.json()["item"]["status"] == "edited"
        assert post(client, vague, "reject").status_code == 200
        refused = post(client, fixture_run.pair_ids[0], "rescue")
        counts = client.get("/api/state").json()["counts"]
    assert refused.status_code == 400 and "auto-rejected" in refused.text
    assert counts["auto-rejected"] == 3 and counts["accepted"] == 1
    pairs, summary = reviewed_pairs(run)
    by_id = {pair.pair_id: pair for pair in pairs}
    rescued = by_id[grounded]
    assert rescued.query.startswith("How many MWh") and rescued.checks["rescued_from"] == "ungrounded"
    assert rescued.evidence == "an estimated 11.6 GWh of lost generation"
    assert rescued.pair_id == pair_id_for(rescued.chunk_id, rescued.query)
    assert by_id[hostile].query == better
    assert vague not in by_id and summary.rescued == 2


# --------------------------------------------------------------------------- refusals


BAD_BODIES = [
    ("unknown pair", {"pair_id": "0000000000000000", "decision": "accept"}, 404),
    ("unknown decision", {"pair_id": "PAIR", "decision": "approve"}, 400),
    ("missing decision", {"pair_id": "PAIR"}, 400),
    ("extra field", {"pair_id": "PAIR", "decision": "accept", "admin": True}, 400),
    ("edit without text", {"pair_id": "PAIR", "decision": "edit", "edited_query": "   "}, 400),
    ("text without edit", {"pair_id": "PAIR", "decision": "accept", "edited_query": "Why?"}, 400),
    ("not an object", ["PAIR", "accept"], 400),
    ("huge question", {"pair_id": "PAIR", "decision": "edit", "edited_query": "x" * 5000}, 400),
]


def test_bad_requests_get_a_one_line_4xx_and_change_nothing(fixture_run):
    pair_id = fixture_run.pair_ids[0]
    with served(fixture_run.run) as (_, client):
        before = statuses(client)
        responses = {}
        for name, body, _ in BAD_BODIES:
            body = json.loads(json.dumps(body).replace("PAIR", pair_id))
            responses[name] = client.post("/api/decisions", json=body)
        json_headers = {"Content-Type": "application/json"}
        responses["not json"] = client.post("/api/decisions", content=b"{accept", headers=json_headers)
        responses["empty"] = client.post("/api/decisions", content=b"", headers=json_headers)
        responses["too big"] = client.post("/api/decisions", content=b" " * 70_000, headers=json_headers)
        responses["GET on the API"] = client.get("/api/decisions")
        responses["PUT"] = client.put("/api/decisions", json={"pair_id": pair_id, "decision": "accept"})
        responses["unknown export scope"] = client.get("/export.jsonl", params={"scope": "secret"})
        after = statuses(client)
    expected = {name: status for name, _, status in BAD_BODIES}
    expected.update({"not json": 400, "empty": 400, "too big": 413, "GET on the API": 405, "PUT": 405,
                     "unknown export scope": 400})
    assert {name: response.status_code for name, response in responses.items()} == expected
    for name, response in responses.items():
        assert response.text.strip() and "\n" not in response.text.strip(), name
    assert "0000000000000000" in responses["unknown pair"].text
    assert after == before and not fixture_run.run.review.exists()


def test_a_huge_chunked_post_is_refused_while_it_streams(fixture_run):
    """300 MB offered in 64 KB chunks, with the token: the server answers 413 long before the end."""
    import socket

    chunk = b"x" * 65_536
    offered = 300 * 1024 * 1024
    with served(fixture_run.run) as (server, _):
        host, port = server.host, server.port
        with socket.create_connection((host, port), timeout=10) as conn:
            conn.sendall(
                f"POST /api/decisions HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                f"X-Review-Token: {server.token}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
            )
            sent = 0
            conn.settimeout(0.5)
            try:
                while sent < offered:
                    conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent += len(chunk)
            except (socket.timeout, BrokenPipeError, ConnectionResetError):
                pass  # the server stopped reading: it has answered and closed
            conn.settimeout(10)
            reply = b""
            try:
                while b"\r\n" not in reply:
                    data = conn.recv(4096)
                    if not data:
                        break
                    reply += data
            except ConnectionResetError:
                pass
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert sent < 64 * 1024 * 1024, f"sent {sent / 2**20:.0f} MB before the refusal"
    assert not fixture_run.run.review.exists()


def test_token_is_required_for_every_read_and_write(fixture_run):
    pair_id = fixture_run.pair_ids[0]
    body = {"pair_id": pair_id, "decision": "accept"}
    with served(fixture_run.run) as (server, _):
        base = server.base_url
        with httpx.Client(base_url=base, timeout=10) as anonymous:
            reads = {path: anonymous.get(path) for path in ("/", "/api/state", "/export.jsonl", "/static/review.css")}
            wrong_reads = {path: anonymous.get(path, params={"token": "guess"}) for path in ("/", "/export.jsonl")}
            no_header = anonymous.post("/api/decisions", json=body)
            token_in_query_only = anonymous.post("/api/decisions", json=body, params={"token": server.token})
            wrong_header = anonymous.post("/api/decisions", json=body, headers={"X-Review-Token": server.token + "x"})
            non_ascii = anonymous.post("/api/decisions", json=body, headers={"X-Review-Token": "tökén".encode()})
            good = anonymous.post("/api/decisions", json=body, headers={"X-Review-Token": server.token})
    assert {path: r.status_code for path, r in reads.items()} == dict.fromkeys(reads, 401)
    assert {path: r.status_code for path, r in wrong_reads.items()} == dict.fromkeys(wrong_reads, 403)
    assert "?token=" in reads["/"].text
    assert fixture_run.pair_ids[0] not in reads["/api/state"].text + reads["/export.jsonl"].text
    assert (no_header.status_code, token_in_query_only.status_code) == (401, 401)
    assert (wrong_header.status_code, non_ascii.status_code) == (403, 403)
    assert good.status_code == 200
    assert [row["decision"] for row in review_lines(fixture_run.run)] == ["accept"]


def test_cross_origin_posts_are_refused(fixture_run):
    pair_id = fixture_run.pair_ids[0]
    body = json.dumps({"pair_id": pair_id, "decision": "reject"})
    with served(fixture_run.run) as (server, client):
        token = {"X-Review-Token": server.token}
        json_type = {"Content-Type": "application/json"}
        evil_origin = client.post("/api/decisions", content=body, headers={**token, **json_type, "Origin": "http://evil.example"})
        null_origin = client.post("/api/decisions", content=body, headers={**token, **json_type, "Origin": "null"})
        cross_site = client.post("/api/decisions", content=body, headers={**token, **json_type, "Sec-Fetch-Site": "cross-site"})
        # what an HTML form on another page can send: a simple content type and no custom header
        form = client.post(
            "/api/decisions",
            data={"pair_id": pair_id, "decision": "reject"},
            headers={"Origin": "http://evil.example", "X-Review-Token": ""},
        )
        form_with_token = client.post("/api/decisions", content=body, headers={**token, "Content-Type": "text/plain"})
        rebound = client.post("/api/decisions", content=body, headers={**token, **json_type, "Host": f"evil.example:{server.port}"})
        same_origin = client.post(
            "/api/decisions", content=body, headers={**token, **json_type, "Origin": server.base_url, "Sec-Fetch-Site": "same-origin"}
        )
    assert (evil_origin.status_code, null_origin.status_code, cross_site.status_code) == (403, 403, 403)
    assert "cross-origin" in evil_origin.text
    assert form.status_code in (401, 403)
    assert form_with_token.status_code == 415
    assert rebound.status_code == 400
    assert same_origin.status_code == 200
    assert [row["decision"] for row in review_lines(fixture_run.run)] == ["reject"]


# --------------------------------------------------------------------------- the CLI


def _start_cli(run: RunDir, *args: str, config: Path | None = None) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "domainfit.cli", "review", str(run.root), *args]
    if config is not None:
        command += ["--config", str(config)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("open http"):
            return process, line.split(" ", 1)[1].strip()
    process.kill()
    raise AssertionError(f"no URL printed: {''.join(seen)} {process.stderr.read()}")


def test_killed_cli_server_loses_nothing(fixture_run):
    run = fixture_run.run
    process, url = _start_cli(run)
    try:
        assert url.startswith("http://127.0.0.1:") and "/?token=" in url
        base, token = url.split("/?token=")
        headers = {"X-Review-Token": token}
        for pair_id, decision in zip(fixture_run.pair_ids[:5], ["accept", "reject", "accept", "reject", "accept"]):
            response = httpx.post(f"{base}/api/decisions", json={"pair_id": pair_id, "decision": decision}, headers=headers)
            assert response.status_code == 200
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert len(review_lines(run)) == 5
    with served(run) as (_, client):
        state = statuses(client)
    assert [state[pair_id][0] for pair_id in fixture_run.pair_ids[:5]] == [
        "accepted", "rejected", "accepted", "rejected", "accepted"
    ]


def test_non_loopback_host_needs_the_explicit_flag_and_warns(fixture_run, tmp_path, capsys):
    from domainfit.cli import main

    run = fixture_run.run
    with pytest.raises(ReviewError, match="not loopback"):
        ReviewServer(run, host="0.0.0.0")
    config = tmp_path / "run.toml"
    config.write_text('[review]\nhost = "0.0.0.0"\n')
    with pytest.raises(SystemExit) as refused:
        main(["review", str(run.root), "--config", str(config)])
    stderr = capsys.readouterr().err
    assert refused.value.code == 2 and "--host 0.0.0.0" in stderr
    assert len(stderr.strip().splitlines()) == 1

    process, url = _start_cli(run, "--host", "0.0.0.0")
    try:
        port = url.split(":")[2].split("/")[0]
        token = url.split("?token=")[1]
        reachable = httpx.get(f"http://127.0.0.1:{port}/api/state", params={"token": token})
        assert reachable.status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=15)
    assert "warning: serving on 0.0.0.0" in stderr
    assert process.returncode == 0 and "review: 0 reviewed" in stdout
    assert read_manifest(run)["stages"]["review"]["counts"]["unreviewed"] == len(fixture_run.pair_ids)


def test_review_server_refuses_a_run_without_pairs(tmp_path):
    with pytest.raises(ReviewError, match="run `domainfit synth` first"):
        ReviewServer(RunDir(tmp_path / "empty"))
