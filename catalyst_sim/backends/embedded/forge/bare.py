"""Operations on real bare repositories through the real ``git`` CLI.

The embedded forge keeps no object database of its own: every repository is a bare repo on disk, so
``git clone``/``push`` (through ``git http-backend``) and the API see exactly the same history, and a
clone made from the emulator is an ordinary repository. API commits are written without a work tree,
the way Gitea's temporary-repo code does it: blobs with ``hash-object``, a throw-away index
(``read-tree`` + ``update-index --index-info``), ``write-tree``, ``commit-tree``, then
``update-ref NEW OLD`` so a ref moved behind our back is a compare-and-swap failure, never a lost
commit. Identities and dates are passed in, so commits made on a virtual clock carry virtual time.

Every command runs with ``subprocess.run`` and an argument list (never a shell), with the user's and
the system's git configuration switched off so the host cannot change what a repo looks like.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from catalyst_sim.backends.embedded.forge.advertisement import Fingerprint, refs_fingerprint, refs_in

ZERO_SHA = "0" * 40
RECORD = "\x1e\x1f"  # starts each commit record in ``git log`` output
_LOG_FORMAT = RECORD + "%H%x00%T%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B%x00"
_RAW_STATUS = {"A": "added", "M": "modified", "D": "deleted", "T": "modified", "R": "renamed", "C": "copied"}


# Outputs of ref-dependent read commands, keyed by (repository, arguments); see BareRepo._read.
# Commands that name only object ids have no fingerprint (None): their output never changes.
_READS: dict[tuple[str, tuple[str, ...]], tuple[Fingerprint | None, str]] = {}
_READ_LOCK = threading.Lock()
_MAX_READS = 4096
# (repository, commit, path) -> the last commit that changed the path there; see BareRepo.last_commit.
_LAST: dict[tuple[str, str, str], object] = {}
_LAST_LOCK = threading.Lock()
_MAX_LAST = 65536
_LAST_WALK = 8  # commits walked one by one before git is asked for the rest of the way
_UNKNOWN = object()


class GitError(RuntimeError):
    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"git {' '.join(args)} failed ({returncode}): {stderr.strip()}")
        self.args_list = list(args)
        self.returncode = returncode
        self.stderr = stderr


class RefUpdateConflict(GitError):
    """``update-ref`` refused: the ref no longer holds the value we read (someone pushed meanwhile)."""


@dataclass(frozen=True)
class Signature:
    name: str
    email: str
    when: datetime

    def git_date(self) -> str:
        """Git's internal date format, keeping the offset, so virtual time lands in the commit."""
        offset = self.when.utcoffset()
        minutes = int(offset.total_seconds() // 60) if offset is not None else 0
        sign = "-" if minutes < 0 else "+"
        minutes = abs(minutes)
        return f"@{int(self.when.timestamp())} {sign}{minutes // 60:02d}{minutes % 60:02d}"


@dataclass
class FileChange:
    path: str
    status: str  # added | modified | deleted | renamed | copied
    additions: int = 0
    deletions: int = 0
    previous_path: str = ""  # the source of a rename or copy


@dataclass
class CommitInfo:
    sha: str
    tree: str
    parents: list[str]
    author: Signature
    committer: Signature
    message: str
    files: list[FileChange] | None = None

    def files_by_status(self) -> tuple[list[str], list[str], list[str]]:
        """(added, removed, modified) as in a push payload commit."""
        added, removed, modified = [], [], []
        for change in self.files or []:
            if change.status == "added":
                added.append(change.path)
            elif change.status == "deleted":
                removed.append(change.path)
            else:
                modified.append(change.path)
        return added, removed, modified


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    type: str  # blob | tree | commit
    sha: str
    size: int
    path: str

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def is_file(self) -> bool:
        return self.mode in ("100644", "100755")

    @property
    def is_dir(self) -> bool:
        return self.type == "tree"

    @property
    def is_symlink(self) -> bool:
        return self.mode == "120000"

    @property
    def is_submodule(self) -> bool:
        return self.type == "commit"


@dataclass
class TreeWrite:
    """One path of a new tree: content bytes (hashed for you) and the file mode."""

    path: str
    content: bytes
    mode: str = "100644"


@dataclass
class NewCommit:
    """What :meth:`BareRepo.make_commit` wrote: enough to answer the API without asking git again."""

    commit: CommitInfo
    blobs: dict[str, TreeEntry]  # written path -> its new tree entry

    @property
    def sha(self) -> str:
        return self.commit.sha


@dataclass
class BranchHead:
    name: str
    commit: CommitInfo
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class RefUpdate:
    """One ref moved by a push, an API commit or a merge (``old``/``new`` ZERO_SHA for create/delete)."""

    ref: str
    old: str
    new: str


@dataclass
class MergeTree:
    """What ``git merge-tree --write-tree`` made of two commits: a tree, or the conflicting paths."""

    tree: str | None
    conflicts: list[str] = field(default_factory=list)
    unrelated: bool = False

    @property
    def clean(self) -> bool:
        return self.tree is not None and not self.conflicts and not self.unrelated


# Gitea enforces branch protection in its pre-receive hook (routers/private/hook_pre_receive.go); so do we.
# The forge decides, before ``git http-backend`` runs, which protected refs of the push the pusher may
# update and hands the verdicts to the hook in CATALYST_FORGE_RULES ("<ref> allow|deny" lines). The hook
# applies them in Gitea's order — deletion, then force push (it needs the quarantined objects, so it
# runs here), then the push permission — and refuses the WHOLE push with Gitea's message, so ``git push``
# prints "remote: Gitea: Not allowed to push to protected branch main" and no ref moves.
PRE_RECEIVE_HOOK = """#!/bin/sh
# Installed by catalyst-sim's embedded forge: branch protection as Gitea's pre-receive hook does it.
zero=0000000000000000000000000000000000000000
verdict_for() {
    printf '%s\n' "$CATALYST_FORGE_RULES" | while read -r rule_ref rule_verdict; do
        if [ "$rule_ref" = "$1" ]; then
            echo "$rule_verdict"
            break
        fi
    done
}
while read -r old new ref; do
    [ -n "$CATALYST_FORGE_RULES" ] || continue
    verdict=$(verdict_for "$ref")
    [ -n "$verdict" ] || continue
    branch=${ref#refs/heads/}
    if [ "$new" = "$zero" ]; then
        message="branch $branch is protected from deletion"
    elif [ "$old" != "$zero" ] && [ -n "$(git rev-list --max-count=1 "$old" "^$new")" ]; then
        message="branch $branch is protected from force push"
    elif [ "$verdict" = deny ]; then
        message="Not allowed to push to protected branch $branch"
    else
        continue
    fi
    echo ""
    echo "Gitea: $message" >&2
    exit 1
done
exit 0
"""


# What every forge repository's config says beyond git's defaults (git init adds the core ones).
REPO_CONFIG = "[http]\n\treceivepack = true\n[core]\n\tlogAllRefUpdates = true\n"


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment that ignores the host's git configuration and never prompts."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/nonexistent"),
        "LANG": "C",
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
    }
    if extra:
        env.update(extra)
    return env


def _check_rev(rev: str) -> str:
    if not rev or rev.startswith("-") or any(c in rev for c in "\0\n\r"):
        raise ValueError(f"invalid revision {rev!r}")
    return rev


def _parse_date(text: str) -> datetime:
    return datetime.fromisoformat(text)


class BareRepo:
    """A bare repository on disk and the git plumbing the forge needs on it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    # -- plumbing ---------------------------------------------------------------------------------
    def run(
        self, *args: str, input: bytes | None = None, env: Mapping[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        full_env = git_env({"GIT_DIR": str(self.path), "GIT_LITERAL_PATHSPECS": "1", **(env or {})})
        result = subprocess.run(
            ["git", *args], input=input, env=full_env, capture_output=True, timeout=120, check=False
        )
        if check and result.returncode != 0:
            raise GitError(args, result.returncode, result.stderr.decode(errors="replace"))
        return result

    def _text(self, *args: str, **kwargs: object) -> str:
        return self.run(*args, **kwargs).stdout.decode(errors="surrogateescape")  # type: ignore[arg-type]

    def _read(self, *args: str, immutable: bool = False) -> str:
        """The output of a command that is a pure function of the refs (``for-each-ref``, ``log``):
        kept while no ref moved, because objects never change and every ref update replaces a
        file (see :mod:`.advertisement`). A Gitea API call reads the refs several times.

        ``immutable``: the command names objects by id only (``log <sha> ^<sha>``), so its output is
        kept for good (the forge never prunes objects)."""
        fingerprint = None if immutable else refs_fingerprint(self.path)
        key = (str(self.path), args)
        with _READ_LOCK:
            found = _READS.get(key)
            if found is not None and found[0] == fingerprint:
                return found[1]
        out = self._text(*args)
        with _READ_LOCK:
            if len(_READS) >= _MAX_READS:
                _READS.clear()
            _READS[key] = (fingerprint, out)
        return out

    # -- creation ---------------------------------------------------------------------------------
    @staticmethod
    def write_template(directory: Path) -> Path:
        """A ``git init --template`` directory: the forge's repository config and pre-receive hook.

        One ``git init`` then makes a complete repository; setting the config and the hook after
        it would take two more git processes and two writes per repository."""
        (directory / "hooks").mkdir(parents=True, exist_ok=True)
        (directory / "config").write_text(REPO_CONFIG)
        hook = directory / "hooks" / "pre-receive"
        hook.write_text(PRE_RECEIVE_HOOK)
        hook.chmod(0o755)
        return directory

    @classmethod
    def init(cls, path: Path, default_branch: str = "main", *, template: Path | None = None) -> BareRepo:
        """``git init --bare`` with ``http.receivepack true`` so ``git http-backend`` accepts pushes.

        ``template``: a directory from :meth:`write_template` (else it is configured step by step)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        options = [f"--template={template}"] if template is not None else []
        result = subprocess.run(
            ["git", "init", "--bare", "--quiet", f"--initial-branch={default_branch}", *options, str(path)],
            env=git_env(),
            capture_output=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise GitError(["init", str(path)], result.returncode, result.stderr.decode(errors="replace"))
        repo = cls(path)
        if template is None:
            repo.run("config", "http.receivepack", "true")
            repo.run("config", "core.logAllRefUpdates", "true")
            repo.install_hooks()
        return repo

    def install_hooks(self) -> None:
        """Write the branch-protection ``pre-receive`` hook (idempotent: repos created earlier get it too)."""
        hook = self.path / "hooks" / "pre-receive"
        hook.parent.mkdir(parents=True, exist_ok=True)
        if not hook.exists() or hook.read_text() != PRE_RECEIVE_HOOK:
            hook.write_text(PRE_RECEIVE_HOOK)
        hook.chmod(0o755)

    def set_head(self, branch: str) -> None:
        self.run("symbolic-ref", "HEAD", f"refs/heads/{branch}")

    # -- refs -------------------------------------------------------------------------------------
    def refs(self, prefix: str = "refs/") -> dict[str, str]:
        """Snapshot of every ref under ``prefix`` (ref name -> object id), for push diffing."""
        if any(c in prefix for c in "*?[\\"):  # a glob: git's own matching
            out = self._read("for-each-ref", "--format=%(objectname) %(refname)", prefix)
            return {ref: sha for sha, _, ref in (line.partition(" ") for line in out.splitlines())}
        # for-each-ref's literal pattern: the whole name, or a leading part of it up to a slash.
        stem = prefix.rstrip("/")
        on_disk = refs_in(self.path, refs_fingerprint(self.path))
        return {ref: on_disk[ref] for ref in sorted(on_disk) if ref == stem or ref.startswith(stem + "/")}

    def is_empty(self) -> bool:
        return not self.refs("refs/heads/")

    def resolve_commit(self, rev: str) -> str | None:
        result = self.run(
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            f"{_check_rev(rev)}^{{commit}}",
            check=False,
        )
        if result.returncode != 0:
            return None
        return result.stdout.decode().strip() or None

    def branch_sha(self, name: str) -> str | None:
        return self.refs(f"refs/heads/{name}").get(f"refs/heads/{name}")

    def update_ref(self, ref: str, new: str, old: str, message: str = "") -> None:
        """Compare-and-swap: ``old`` is ZERO_SHA to create only when absent."""
        args = ["update-ref"]
        if message:
            args += ["-m", message]
        result = self.run(*args, ref, new, old, check=False)
        if result.returncode != 0:
            raise RefUpdateConflict(
                ["update-ref", ref, new, old], result.returncode, result.stderr.decode(errors="replace")
            )

    def set_ref(self, ref: str, new: str, message: str = "") -> None:
        """Point ``ref`` at ``new`` whatever it held: for refs only the forge writes (``refs/pull/N/head``)."""
        args = ["update-ref"]
        if message:
            args += ["-m", message]
        self.run(*args, ref, _check_rev(new))

    def delete_ref(self, ref: str, old: str) -> None:
        result = self.run("update-ref", "-d", ref, old, check=False)
        if result.returncode != 0:
            raise RefUpdateConflict(
                ["update-ref", "-d", ref, old], result.returncode, result.stderr.decode(errors="replace")
            )

    def branches(self, pattern: str = "refs/heads/") -> list[BranchHead]:
        """Every branch with its head commit: the refs from disk, each commit read once for good."""
        heads: list[BranchHead] = []
        for ref, sha in self.refs(pattern).items():
            found = self.commit(sha) if ref.startswith("refs/heads/") else None
            if found is not None:
                heads.append(BranchHead(name=ref.removeprefix("refs/heads/"), commit=found))
        return heads

    def branch(self, name: str) -> BranchHead | None:
        for head in self.branches(f"refs/heads/{name}"):
            if head.name == name:
                return head
        return None

    # -- trees and blobs --------------------------------------------------------------------------
    def _ls_tree(self, args: Sequence[str]) -> list[TreeEntry]:
        out = self.run("ls-tree", "-l", "-z", "--full-tree", *args).stdout.decode(errors="surrogateescape")
        entries = []
        for item in out.split("\0"):
            if not item:
                continue
            meta, _, path = item.partition("\t")
            mode, kind, sha, size = meta.split(maxsplit=3)
            entries.append(
                TreeEntry(
                    mode=mode, type=kind, sha=sha, size=int(size) if size.strip() != "-" else 0, path=path
                )
            )
        return entries

    def entries(self, commit: str, paths: Iterable[str]) -> dict[str, TreeEntry]:
        """The tree entries at exactly these paths (files or directories) in ``commit``."""
        wanted = [p for p in paths if p]
        if not wanted:
            return {}
        return {e.path: e for e in self._ls_tree([_check_rev(commit), "--", *wanted])}

    def entry(self, commit: str, path: str) -> TreeEntry | None:
        return self.entries(commit, [path]).get(path)

    def list_dir(self, commit: str, path: str = "") -> list[TreeEntry]:
        args = [_check_rev(commit)]
        if path:
            args += ["--", path.rstrip("/") + "/"]
        return self._ls_tree(args)

    def read_blob(self, sha: str) -> bytes:
        return self.run("cat-file", "blob", _check_rev(sha)).stdout

    def write_blobs(self, contents: Sequence[bytes]) -> list[str]:
        """Store blobs in one ``hash-object -w --stdin-paths`` call, however many files there are."""
        if not contents:
            return []
        with tempfile.TemporaryDirectory(prefix="forge-blobs-") as tmp:
            paths = []
            for index, content in enumerate(contents):
                file = Path(tmp) / str(index)
                file.write_bytes(content)
                paths.append(str(file))
            out = self.run(
                "hash-object", "-w", "--no-filters", "--stdin-paths", input=("\n".join(paths) + "\n").encode()
            ).stdout.decode()
        return out.split()

    # -- commits ----------------------------------------------------------------------------------
    def make_commit(
        self,
        parent: str | None,
        writes: Sequence[TreeWrite],
        deletes: Iterable[str],
        message: str,
        author: Signature,
        committer: Signature,
    ) -> NewCommit:
        """Create (but do not publish) a commit: ``parent``'s tree with ``writes`` and ``deletes``."""
        blob_ids = self.write_blobs([w.content for w in writes])
        lines = [f"0 {ZERO_SHA}\t{path}" for path in deletes]
        lines += [f"{w.mode} {sha}\t{w.path}" for w, sha in zip(writes, blob_ids, strict=True)]
        fd, index_file = tempfile.mkstemp(prefix="forge-index-")
        os.close(fd)
        os.unlink(index_file)  # git wants to create the index itself
        index_env = {"GIT_INDEX_FILE": index_file}
        try:
            if parent:
                self.run("read-tree", _check_rev(parent), env=index_env)
            else:
                self.run("read-tree", "--empty", env=index_env)
            if lines:
                self.run(
                    "update-index",
                    "-z",
                    "--index-info",
                    input=("\0".join(lines) + "\0").encode(),
                    env=index_env,
                )
            tree = self.run("write-tree", env=index_env).stdout.decode().strip()
        finally:
            for leftover in (index_file, index_file + ".lock"):
                if os.path.exists(leftover):
                    os.unlink(leftover)
        info = self.commit_tree(tree, [parent] if parent else [], message, author, committer)
        blobs = {
            w.path: TreeEntry(mode=w.mode, type="blob", sha=blob, size=len(w.content), path=w.path)
            for w, blob in zip(writes, blob_ids, strict=True)
        }
        return NewCommit(commit=info, blobs=blobs)

    def commit_tree(
        self, tree: str, parents: Sequence[str], message: str, author: Signature, committer: Signature
    ) -> CommitInfo:
        """``git commit-tree`` with explicit identities and dates (virtual time lands in the commit)."""
        args = ["commit-tree", _check_rev(tree)]
        for parent in parents:
            args += ["-p", _check_rev(parent)]
        env = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_AUTHOR_DATE": author.git_date(),
            "GIT_COMMITTER_NAME": committer.name,
            "GIT_COMMITTER_EMAIL": committer.email,
            "GIT_COMMITTER_DATE": committer.git_date(),
        }
        body = message if message.endswith("\n") else message + "\n"
        sha = self.run(*args, "-F", "-", input=body.encode(), env=env).stdout.decode().strip()
        return CommitInfo(
            sha=sha, tree=tree, parents=list(parents), author=author, committer=committer, message=body
        )

    # -- merging and comparing --------------------------------------------------------------------
    def merge_base(self, a: str, b: str) -> str | None:
        """The best common ancestor, or None for unrelated histories."""
        result = self.run("merge-base", "--end-of-options", _check_rev(a), _check_rev(b), check=False)
        if result.returncode != 0:
            return None
        return result.stdout.decode().strip() or None

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        result = self.run(
            "merge-base", "--is-ancestor", "--end-of-options", _check_rev(ancestor), _check_rev(descendant), check=False
        )
        if result.returncode not in (0, 1):
            raise GitError(["merge-base", "--is-ancestor"], result.returncode, result.stderr.decode(errors="replace"))
        return result.returncode == 0

    def merge_tree(self, ours: str, theirs: str) -> MergeTree:
        """A real three-way merge without a work tree (``git merge-tree --write-tree``, git >= 2.38).

        Exit 0 is a clean merge, 1 a conflicted one (the conflicting paths are listed), and git refuses
        unrelated histories the way ``git merge`` does, which Gitea reports as a conflict too.
        """
        result = self.run(
            "merge-tree", "--write-tree", "--name-only", "-z", _check_rev(ours), _check_rev(theirs), check=False
        )
        stderr = result.stderr.decode(errors="replace")
        if result.returncode == 128 and "unrelated histories" in stderr:
            return MergeTree(tree=None, unrelated=True)
        if result.returncode not in (0, 1):
            raise GitError(["merge-tree", ours, theirs], result.returncode, stderr)
        tokens = result.stdout.decode(errors="surrogateescape").split("\0")
        conflicts: list[str] = []
        if result.returncode == 1:
            for token in tokens[1:]:
                if not token:
                    break
                if token not in conflicts:
                    conflicts.append(token)
        return MergeTree(tree=tokens[0].strip(), conflicts=conflicts)

    def changed_paths(self, a: str, b: str) -> set[str]:
        """Paths whose content differs between two commits (no rename detection)."""
        out = self._text("diff", "--name-only", "-z", "--no-renames", "--end-of-options", _check_rev(a), _check_rev(b))
        return {p for p in out.split("\0") if p}

    def diff_files(self, a: str, b: str) -> list[FileChange]:
        """Files changed from ``a`` to ``b`` with rename detection and line counts (a PR's file list)."""
        out = self._text(
            "diff", "--raw", "--numstat", "-z", "-M", "--no-abbrev", "--end-of-options", _check_rev(a), _check_rev(b)
        )
        return _parse_diff_with_renames(out)

    def _log(self, args: Sequence[str], with_files: bool) -> list[CommitInfo]:
        cmd = ["log", "-z", f"--format={_LOG_FORMAT}"]
        if with_files:
            cmd += ["--raw", "--numstat", "--no-renames", "--no-abbrev", "--diff-merges=first-parent"]
        out = self._read(*cmd, *args, immutable=_names_objects_only(args))
        commits = []
        for chunk in out.split(RECORD):
            if not chunk:
                continue
            (sha, tree, parents, an, ae, ad, cn, ce, cd, message, rest) = chunk.split("\0", 10)
            info = CommitInfo(
                sha=sha,
                tree=tree,
                parents=parents.split(),
                author=Signature(an, ae, _parse_date(ad)),
                committer=Signature(cn, ce, _parse_date(cd)),
                message=message,
            )
            if with_files:
                info.files = _parse_diff(rest)
            commits.append(info)
        return commits

    def log(
        self,
        rev: str,
        *,
        path: str | None = None,
        skip: int = 0,
        limit: int | None = None,
        not_revs: Sequence[str] = (),
        with_files: bool = False,
    ) -> list[CommitInfo]:
        """Commits reachable from ``rev`` (newest first), optionally touching ``path``, paged."""
        args = [f"--skip={skip}"]
        if limit is not None:
            args.append(f"--max-count={limit}")
        args += ["--end-of-options", _check_rev(rev)]
        args += [f"^{_check_rev(r)}" for r in not_revs]
        if path:
            args += ["--", path]
        return self._log(args, with_files)

    def count(self, rev: str, *, path: str | None = None, not_revs: Sequence[str] = ()) -> int:
        args = ["rev-list", "--count", "--end-of-options", _check_rev(rev)]
        args += [f"^{_check_rev(r)}" for r in not_revs]
        if path:
            args += ["--", path]
        return int(self._text(*args).strip() or 0)

    def commit(self, sha: str, *, with_files: bool = False) -> CommitInfo | None:
        full = sha if _is_object_id(sha) else self.resolve_commit(sha)
        if full is None:
            return None
        found = self._log(["--max-count=1", full], with_files)
        return found[0] if found else None

    def last_commit(self, rev: str, path: str) -> CommitInfo | None:
        """The newest commit reachable from ``rev`` that changed ``path`` (file or directory): what
        ``git log -1 rev -- path`` answers, as Gitea shows it beside every entry of a listing.

        Asking git for each entry of every listing walks the whole history each time, so listing a
        directory that grows with its history (an Org's CRs in catalyst-config) grew quadratically.
        Answers are kept per (commit, path), and a commit with one parent that leaves ``path`` alone
        has its parent's answer (it is TREESAME there, so git's history simplification passes over
        it). A new commit then costs one ``git log`` of itself for the whole listing. Merges, roots
        and walks longer than :data:`_LAST_WALK` commits ask git, and their answer is kept too.
        """
        if not path or not _is_object_id(rev):
            found = self.log(rev, path=path or None, limit=1)
            return found[0] if found else None
        root = str(self.path)
        walked: list[str] = []
        current = rev
        result: CommitInfo | None = None
        while True:
            with _LAST_LOCK:
                known = _LAST.get((root, current, path), _UNKNOWN)
            if known is not _UNKNOWN:
                result = known  # type: ignore[assignment]
                break
            walked.append(current)
            info = self.commit(current, with_files=True) if len(walked) <= _LAST_WALK else None
            if info is None or len(info.parents) != 1:
                found = self.log(current, path=path, limit=1)  # git's own answer from here
                result = found[0] if found else None
                break
            if any(change.path == path or change.path.startswith(path + "/") for change in info.files or ()):
                result = replace(info, files=None)
                break
            current = info.parents[0]
        with _LAST_LOCK:
            if len(_LAST) + len(walked) > _MAX_LAST:
                _LAST.clear()
            for sha in walked:
                _LAST[(root, sha, path)] = result
        return result

    def new_commits(
        self, new: str, old: str | None, *, limit: int | None = None, with_files: bool = True
    ) -> list[CommitInfo]:
        """Commits a ref update brought in (newest first), like Gitea's ``CommitsBeforeUntil``."""
        args = [f"--max-count={limit}"] if limit is not None else []
        args += ["--end-of-options", _check_rev(new)]
        if old and old != ZERO_SHA:
            args.append(f"^{_check_rev(old)}")
        return self._log(args, with_files)


def _is_object_id(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


def _names_objects_only(log_args: Sequence[str]) -> bool:
    """Whether every revision in ``git log`` arguments is an object id (``<sha>``, ``^<sha>``), not a ref."""
    revisions = []
    for arg in log_args:
        if arg == "--":
            break
        if not arg.startswith("--"):
            revisions.append(arg.removeprefix("^"))
    return bool(revisions) and all(_is_object_id(rev) for rev in revisions)


def _parse_diff(text: str) -> list[FileChange]:
    """Parse ``--raw --numstat -z`` output: raw records give the status, numstat the line counts."""
    tokens = text.split("\0")
    changes: dict[str, FileChange] = {}
    order: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i].lstrip("\n")
        i += 1
        if not token:
            continue
        if token.startswith(":"):
            status = token.split()[-1][:1]
            path = tokens[i] if i < len(tokens) else ""
            i += 1
            if path not in changes:
                order.append(path)
            changes[path] = FileChange(path=path, status=_RAW_STATUS.get(status, "modified"))
            continue
        added, _, rest = token.partition("\t")
        deleted, _, path = rest.partition("\t")
        change = changes.get(path)
        if change is None:
            change = changes[path] = FileChange(path=path, status="modified")
            order.append(path)
        change.additions = int(added) if added.isdigit() else 0
        change.deletions = int(deleted) if deleted.isdigit() else 0
    return [changes[p] for p in order]


def _parse_diff_with_renames(text: str) -> list[FileChange]:
    """Parse ``diff --raw --numstat -z -M``: raw records (status, one or two paths), then numstat records
    (``added TAB deleted TAB path`` or, for a rename, ``added TAB deleted TAB`` then both paths)."""
    tokens = text.split("\0")
    changes: dict[str, FileChange] = {}
    order: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i].lstrip("\n")
        i += 1
        if not token:
            continue
        if token.startswith(":"):
            status = token.split()[-1][:1]
            if status in ("R", "C"):
                source, path = tokens[i], tokens[i + 1]
                i += 2
            else:
                source, path = "", tokens[i]
                i += 1
            if path not in changes:
                order.append(path)
            changes[path] = FileChange(path=path, status=_RAW_STATUS.get(status, "modified"), previous_path=source)
            continue
        added, _, rest = token.partition("\t")
        deleted, _, path = rest.partition("\t")
        if not path:  # a rename: the two paths follow as their own tokens
            path = tokens[i + 1] if i + 1 < len(tokens) else ""
            i += 2
        change = changes.get(path)
        if change is None:
            change = changes[path] = FileChange(path=path, status="modified")
            order.append(path)
        change.additions = int(added) if added.isdigit() else 0
        change.deletions = int(deleted) if deleted.isdigit() else 0
    return [changes[p] for p in order]
