"""The Hub stand-in's HTTP layer: the requests huggingface_hub's client makes, answered from a `HubStandin`."""

from __future__ import annotations

import hashlib
import json
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from hub_repos import PLURAL, Commit, HubError, Repo


if TYPE_CHECKING:
    from hub_standin import HubStandin


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
    server_version = "HubStandin/1"

    @property
    def hub(self) -> HubStandin:
        return self.server.hub  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        pass  # the requests are kept in `hub.requests`; stderr stays quiet

    # ------------------------------------------------------------------------------------------- plumbing

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        raw_parts = [p for p in split.path.split("/") if p]
        parts = [unquote(p) for p in raw_parts]
        with self.hub.lock:
            self.hub.requests.append((method, split.path))
        body = self._read_body()
        try:
            if self.server.role == "storage":  # type: ignore[attr-defined]
                self._storage(method, parts, body)
            else:
                self._api(method, parts, body)
        except HubError as err:
            headers = {"X-Error-Message": err.message}
            if err.code:
                headers["X-Error-Code"] = err.code
            if err.commit:
                headers["X-Repo-Commit"] = err.commit
            self._json({"error": err.message}, err.status, headers, method)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, headers: dict[str, str], method: str) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", headers.get("Content-Length", str(len(body))))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200, headers: dict[str, str] | None = None, method: str = "GET") -> None:
        body = json.dumps(obj).encode()
        self._send(status, body, {"Content-Type": "application/json", **(headers or {})}, method)

    def _require_token(self) -> None:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[len("Bearer ") :].strip():
            raise HubError(401, "Invalid credentials in Authorization header")

    def _repo(self, repo_type: str, namespace: str, name: str) -> Repo:
        with self.hub.lock:
            repo = self.hub.repos.get((repo_type, f"{namespace}/{name}"))
        if repo is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _commit_of(self, repo: Repo, revision: str) -> Commit:
        with self.hub.lock:
            commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _unhandled(self, method: str) -> None:
        with self.hub.lock:
            self.hub.unhandled.append((method, self.path))
        raise HubError(404, f"The stand-in Hub does not serve {method} {self.path}")

    # ------------------------------------------------------------------------------------------- API server

    def _api(self, method: str, parts: list[str], body: bytes) -> None:
        if parts[:1] == ["api"]:
            self._api_json(method, parts[1:], body)
            return
        repo_type = "model"
        if parts[:1] in (["datasets"], ["spaces"]):
            repo_type, parts = PLURAL[parts[0]], parts[1:]
        if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
            self._resolve(method, self._repo(repo_type, parts[0], parts[1]), parts[3], "/".join(parts[4:]))
        elif parts[2:4] == ["info", "lfs"] and parts[1].endswith(".git") and method == "POST":
            self._require_token()
            repo = self._repo(repo_type, parts[0], parts[1][: -len(".git")])
            if parts[4:] == ["objects", "batch"]:
                self._lfs_batch(repo, json.loads(body))
            elif parts[4:] == ["objects", "verify"]:
                self._lfs_verify(json.loads(body))
            else:
                self._unhandled(method)
        else:
            self._unhandled(method)

    def _api_json(self, method: str, parts: list[str], body: bytes) -> None:
        if parts == ["whoami-v2"] and method == "GET":
            self._require_token()
            self._json({"type": "user", "id": "0" * 24, "name": self.hub.user, "fullname": "Stand-in Tester",
                        "orgs": [], "auth": {"type": "access_token",
                                             "accessToken": {"displayName": "standin", "role": "write"}}})  # fmt: skip
        elif parts == ["repos", "create"] and method == "POST":
            self._require_token()
            self._create(json.loads(body))
        elif parts == ["validate-yaml"] and method == "POST":
            with self.hub.lock:
                self.hub.cards.append(json.loads(body).get("content", ""))
            self._json({"errors": [], "warnings": []})
        elif len(parts) >= 3 and parts[0] in PLURAL:
            self._repo_api(method, PLURAL[parts[0]], parts[1], parts[2], parts[3:], body)
        elif len(parts) == 2 and parts[0] in PLURAL:  # an id without namespace (as create_repo's 401 fallback asks)
            raise HubError(404, "Repository not found", "RepoNotFound")
        else:
            self._unhandled(method)

    def _create(self, payload: dict[str, Any]) -> None:
        repo_type = payload.get("type") or "model"
        namespace = payload.get("organization") or self.hub.user
        repo_id = f"{namespace}/{payload['name']}"
        private = payload.get("private") or payload.get("visibility") == "private"
        try:
            repo = self.hub.create_repo(repo_type, repo_id, bool(private))
        except HubError as err:
            existing = self.hub.repo(repo_id, repo_type)
            self._json({"error": err.message, "url": self.hub.repo_url(existing)}, 409)
            return
        self._json({"url": self.hub.repo_url(repo), "name": repo_id, "id": repo_id})

    def _repo_api(self, method: str, repo_type: str, namespace: str, name: str, rest: list[str], body: bytes) -> None:
        repo = self._repo(repo_type, namespace, name)
        action = rest[0] if rest else None
        if method == "GET" and action is None:
            self._json(self.hub.info(repo, self._commit_of(repo, "main")))
        elif method == "GET" and action == "revision" and len(rest) == 2:
            self._json(self.hub.info(repo, self._commit_of(repo, rest[1])))
        elif method == "GET" and action == "tree" and len(rest) >= 2:
            commit = self._commit_of(repo, rest[1])
            recursive = self.query.get("recursive", "false").lower() in ("true", "1")
            self._json(self.hub.tree(commit, "/".join(rest[2:]), recursive))
        elif method == "POST" and action == "preupload" and len(rest) == 2:
            self._require_token()
            self._preupload(repo, rest[1], json.loads(body))
        elif method == "POST" and action == "commit" and len(rest) == 2:
            self._require_token()
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            commit = self.hub.commit(repo, rest[1], lines)
            url = f"{self.hub.repo_url(repo)}/commit/{commit.oid}"
            self._json({"success": True, "commitOid": commit.oid, "commitUrl": url, "hookOutput": "",
                        "pullRequestUrl": None})  # fmt: skip
        else:
            self._unhandled(method)

    def _preupload(self, repo: Repo, revision: str, payload: dict[str, Any]) -> None:
        head = self._commit_of(repo, revision)
        answers = []
        for item in payload.get("files", []):
            path, size = item["path"], int(item["size"])
            mode = self.hub.upload_mode(path, size)
            current = head.files.get(path)
            oid = None
            if current is not None and current.lfs == (mode == "lfs"):
                oid = current.sha256 if current.lfs else current.git_oid  # what the client compares with its own
            answers.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        self._json({"files": answers, "commitOid": head.oid})

    def _lfs_batch(self, repo: Repo, payload: dict[str, Any]) -> None:
        if payload.get("operation") != "upload":
            raise HubError(400, "The stand-in Hub only serves LFS uploads")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            answer: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if not self.hub.object_path(oid).exists():  # stored objects get no action: the client skips them
                answer["actions"] = {
                    "upload": {"href": f"{self.hub.storage_url}/lfs/{oid}", "header": {}, "expires_in": 3600},
                    "verify": {"href": f"{self.hub.repo_url(repo)}.git/info/lfs/objects/verify", "header": {}},
                }
            objects.append(answer)
        body = json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}).encode()
        self._send(200, body, {"Content-Type": "application/vnd.git-lfs+json"}, "POST")

    def _lfs_verify(self, payload: dict[str, Any]) -> None:
        path = self.hub.object_path(payload["oid"])
        if not path.exists() or path.stat().st_size != int(payload["size"]):
            raise HubError(404, f"LFS object {payload['oid']} not found or of the wrong size")
        self._json({"success": True}, method="POST")

    def _resolve(self, method: str, repo: Repo, revision: str, path: str) -> None:
        commit = self._commit_of(repo, revision)
        blob = commit.files.get(path)
        if blob is None:
            raise HubError(404, "Entry not found", "EntryNotFound", commit.oid)
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{blob.git_oid}"', "Accept-Ranges": "bytes"}
        if blob.lfs:  # as the Hub sends LFS files to its CDN: another host, so the client stops and reads these
            headers.update({
                "X-Linked-Etag": f'"{blob.sha256}"',
                "X-Linked-Size": str(blob.size),
                "Location": f"{self.hub.storage_url}/lfs/{blob.sha256}",
            })  # fmt: skip
            self._send(302, b"", headers, method)
            return
        data = self.hub.object_path(blob.sha256).read_bytes()
        self._send(200, data, {"Content-Type": "application/octet-stream", **headers}, method)

    # ------------------------------------------------------------------------------------------- storage server

    def _storage(self, method: str, parts: list[str], body: bytes) -> None:
        if "Authorization" in self.headers:
            with self.hub.lock:
                self.hub.storage_auth.append(self.headers["Authorization"])
        if len(parts) != 2 or parts[0] != "lfs":
            self._unhandled(method)
        oid = parts[1]
        if method == "PUT":
            if hashlib.sha256(body).hexdigest() != oid:
                raise HubError(400, f"Uploaded content does not match sha256 {oid}")
            self.hub.store(body)
            self._send(200, b"", {"ETag": f'"{hashlib.md5(body).hexdigest()}"'}, method)
        elif method in ("GET", "HEAD"):
            path = self.hub.object_path(oid)
            if not path.exists():
                raise HubError(404, "No such object")
            data = path.read_bytes()
            self._send(200, data, {"Content-Type": "application/octet-stream", "ETag": f'"{oid}"'}, method)
        else:
            self._unhandled(method)
