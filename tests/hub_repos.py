"""The Hub stand-in's state: repos, commits and file entries, and the error answers (see tests/hub_standin.py)."""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field


TYPE_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
PLURAL = {"models": "model", "datasets": "dataset", "spaces": "space"}
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack", ".zip")
LFS_MIN_SIZE = 1024  # the Hub's rule is 10 MB or a binary sample; smaller here so tiny test files take the LFS path
GITATTRIBUTES = b"".join(f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n".encode() for suffix in LFS_SUFFIXES)
COMMIT_OID = re.compile(r"^[0-9a-f]{40}$")


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob (what the Hub reports as a regular file's `oid` and `ETag`)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass(frozen=True)
class Blob:
    """A file in a commit's tree: its content's sha256 (the storage key) and how git would hold it."""

    sha256: str
    size: int
    lfs: bool
    git_oid: str  # of the content for a regular file, of the pointer for an LFS file


@dataclass
class Commit:
    oid: str
    title: str
    description: str
    files: dict[str, Blob]
    date: float = field(default_factory=time.time)


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    commits: list[Commit] = field(default_factory=list)

    @property
    def head(self) -> Commit:
        return self.commits[-1]

    def resolve(self, revision: str) -> Commit | None:
        if revision == "main":
            return self.head
        return next((c for c in self.commits if COMMIT_OID.match(revision) and c.oid == revision), None)


class HubError(Exception):
    """An error answer: status, message, and the `X-Error-Code` huggingface_hub maps to its error classes."""

    def __init__(self, status: int, message: str, code: str | None = None, commit: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.commit = status, message, code, commit


def iso_time(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(timestamp))
