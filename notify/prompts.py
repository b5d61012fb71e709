"""Spoken prompts, rendered offline: espeak-ng (Mandarin `cmn`, then English) to a WAV that
sox turns into what a phone line carries (8 kHz, mono, 16-bit), cached by text."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PromptError", "Prompts"]


class PromptError(RuntimeError):
    """The text could not be rendered (espeak-ng or sox missing or failing)."""


class Prompts:
    def __init__(self, directory: Path | None = None, *, espeak: str = "espeak-ng", sox: str = "sox") -> None:
        self._dir = directory or Path(tempfile.mkdtemp(prefix="watchpost-prompts-"))
        self._dir.mkdir(parents=True, exist_ok=True)
        self._espeak = shutil.which(espeak)
        self._sox = shutil.which(sox)

    def render(self, script: tuple[str, str]) -> Path:
        """The WAV speaking the Mandarin text, then the English one."""
        key = hashlib.sha256("\n".join(script).encode()).hexdigest()[:20]
        out = self._dir / f"{key}.wav"
        if out.exists():
            return out
        if self._espeak is None or self._sox is None:
            raise PromptError("voice prompts need espeak-ng and sox")
        zh, en = self._dir / f"{key}.zh.wav", self._dir / f"{key}.en.wav"
        try:
            subprocess.run([self._espeak, "-v", "cmn", "-s", "150", "-w", str(zh), script[0]], check=True, capture_output=True, timeout=30)
            subprocess.run([self._espeak, "-v", "en", "-s", "150", "-w", str(en), script[1]], check=True, capture_output=True, timeout=30)
            partial = out.with_suffix(".part.wav")
            subprocess.run([self._sox, str(zh), str(en), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(partial)],
                           check=True, capture_output=True, timeout=30)
            partial.replace(out)
        except (subprocess.SubprocessError, OSError) as exc:
            raise PromptError(f"rendering a prompt failed: {exc}") from exc
        finally:
            zh.unlink(missing_ok=True)
            en.unlink(missing_ok=True)
        return out
