"""Git's refusals as toolbox errors: an HTTP status and the `code` the Daytona SDK maps to its finer
exception classes (daytona-wire.md §2.6), with git's own message. Nothing here is a 500."""

from __future__ import annotations

import re

from .git_exec import StepResult


class GitFailure(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _rule(pattern: str, status: int, code: str) -> tuple[re.Pattern[str], int, str]:
    return re.compile(pattern, re.IGNORECASE | re.MULTILINE), status, code


_FILE_RULES = (  # `add`, `restore`, `reset` name files, not refs
    _rule(r"pathspec '.*' did not match any file", 404, "FILE_NOT_FOUND"),
)

_RULES = (  # first match wins: the more specific verdicts come first
    _rule(r"^CONFLICT \(|Automatic merge failed|fix conflicts and then commit|resolve your current index first"
          r"|you have unmerged files|is not possible because you have unmerged", 409, "GIT_MERGE_CONFLICT"),
    _rule(r"local changes to the following files would be overwritten|untracked working tree files would be"
          r" overwritten|Please commit your changes or stash them|You have unstaged changes"
          r"|contains uncommitted changes", 409, "GIT_DIRTY_WORKTREE"),
    _rule(r"\[remote rejected\]|hook declined|protected branch|GH006", 422, "GIT_REMOTE_REJECTED"),
    _rule(r"\[rejected\]|non-fast-forward|Updates were rejected|\(fetch first\)|stale info", 409,
          "GIT_PUSH_REJECTED"),
    _rule(r"Authentication failed|could not read (Username|Password)|terminal prompts disabled"
          r"|HTTP Basic: Access denied|returned error: 40[13]\b|Permission denied \((publickey|keyboard)"
          r"|Invalid username or password|Host key verification failed", 401, "GIT_AUTH_FAILED"),
    _rule(r"Repository not found|does not appear to be a git repository|not a git repository"
          r"|returned error: 404\b|repository '.*' (not found|does not exist)|cannot change to '.*': No such file"
          r"|No such file or directory", 404, "GIT_REPO_NOT_FOUND"),
    _rule(r"Remote branch .* not found|couldn't find remote ref|invalid reference|branch '.*' not found"
          r"|did not match any file\(s\) known to git|unknown revision|not a valid object name|is not a commit"
          r"|reference is not a tree|src refspec .* does not match any|not a valid ref|Needed a single revision",
          404, "GIT_BRANCH_NOT_FOUND"),
    _rule(r"a branch named '.*' already exists", 409, "GIT_BRANCH_EXISTS"),
    _rule(r"already exists", 409, "GIT_ALREADY_EXISTS"),
    _rule(r"Could not resolve (host|proxy)|Failed to connect|Connection refused|Connection timed out"
          r"|Operation timed out|timed out|SSL certificate problem|certificate verif|gnutls_handshake"
          r"|unable to access|early EOF|remote end hung up|RPC failed|Could not read from remote repository"
          r"|Network is unreachable|Empty reply from server|returned error: 5\d\d\b|transport '.*' not allowed",
          502, "GIT_TRANSPORT_FAILED"),
    _rule(r"nothing to commit|no changes added to commit|nothing added to commit", 409, "GIT_NOTHING_TO_COMMIT"),
    _rule(r"divergent branches|Not possible to fast-forward", 409, "GIT_BRANCHES_DIVERGED"),
    _rule(r"no tracking information|has no upstream branch|no upstream configured|not currently on a branch"
          r"|HEAD cannot be resolved to branch", 400, "GIT_NO_UPSTREAM"),
    _rule(r"Cannot delete branch|checked out at", 409, "GIT_BRANCH_IN_USE"),
    _rule(r"Author identity unknown|Please tell me who you are|empty ident name", 400, "GIT_IDENTITY_UNKNOWN"),
    _rule(r"is not a valid branch name|not a valid branch name|bad revision|invalid key|does not contain a section",
          400, "GIT_INVALID_NAME"),
    _rule(r"Permission denied|could not lock config file", 403, "FILE_ACCESS_DENIED"),
    _rule(r"cannot run git", 422, "GIT_NOT_INSTALLED"),
)

_CREDENTIALS_IN_URL = re.compile(r"([a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)
MAX_MESSAGE = 4000


def git_message(result: StepResult) -> str:
    """Git's own words: stderr without hints (stdout when stderr is empty), credentials in URLs masked."""
    lines = [line for line in result.err.splitlines() if line.strip() and not line.startswith("hint:")]
    text = "\n".join(lines).strip() or result.text.strip() or f"git exited with code {result.code}"
    text = _CREDENTIALS_IN_URL.sub(r"\1***@", text)
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "..."


def classify(op: str, result: StepResult) -> GitFailure:
    """The failure of one git step of operation `op`."""
    haystack = f"{result.err}\n{result.text}"
    rules = (_FILE_RULES + _RULES) if op in ("add", "restore", "reset") else _RULES
    for pattern, status, code in rules:
        if pattern.search(haystack) and not (code == "GIT_REPO_NOT_FOUND" and _is_local_write(op, haystack)):
            return GitFailure(status, code, git_message(result))
    return GitFailure(400, "GIT_COMMAND_FAILED", git_message(result))


def _is_local_write(op: str, text: str) -> bool:
    """`clone`/`init` into a path they cannot create is a file problem, not a missing repository."""
    return op in ("clone", "init") and ("could not create" in text or "cannot mkdir" in text)
