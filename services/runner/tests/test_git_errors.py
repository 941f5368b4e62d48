"""Git's refusals (its real messages, git 2.39) mapped to the SDK's error codes and statuses."""

from __future__ import annotations

import pytest

from corral_runner.app.git_errors import classify, git_message
from corral_runner.app.git_exec import StepResult


def failed(err: str, out: str = "", code: int = 128) -> StepResult:
    return StepResult(code, out.encode(), err)


@pytest.mark.parametrize(("op", "err", "status", "code"), [
    ("clone", "fatal: Authentication failed for 'http://127.0.0.1:4321/private.git/'", 401, "GIT_AUTH_FAILED"),
    ("clone", "fatal: could not read Username for 'http://127.0.0.1:4321': terminal prompts disabled", 401,
     "GIT_AUTH_FAILED"),
    ("push", "remote: HTTP Basic: Access denied\nfatal: unable to access 'https://h/r.git/': The requested URL "
             "returned error: 403", 401, "GIT_AUTH_FAILED"),
    ("clone", "fatal: repository '/home/daytona/srv/missing.git' does not exist", 404, "GIT_REPO_NOT_FOUND"),
    ("clone", "fatal: '/tmp/nobare.git' does not appear to be a git repository\nfatal: Could not read from remote "
              "repository.\n\nPlease make sure you have the correct access rights", 404, "GIT_REPO_NOT_FOUND"),
    ("clone", "remote: Repository not found.\nfatal: repository 'https://github.com/x/y.git/' not found", 404,
     "GIT_REPO_NOT_FOUND"),
    ("status", "fatal: not a git repository (or any of the parent directories): .git", 404, "GIT_REPO_NOT_FOUND"),
    ("status", "fatal: cannot change to 'no/such': No such file or directory", 404, "GIT_REPO_NOT_FOUND"),
    ("clone", "fatal: Remote branch nob not found in upstream origin", 404, "GIT_BRANCH_NOT_FOUND"),
    ("checkout", "fatal: invalid reference: nosuch", 404, "GIT_BRANCH_NOT_FOUND"),
    ("delete_branch", "error: branch 'nosuch' not found.", 404, "GIT_BRANCH_NOT_FOUND"),
    ("pull", "fatal: couldn't find remote ref nob", 404, "GIT_BRANCH_NOT_FOUND"),
    ("push", "error: src refspec nob does not match any\nerror: failed to push some refs", 404,
     "GIT_BRANCH_NOT_FOUND"),
    ("create_branch", "fatal: a branch named 'feat' already exists", 409, "GIT_BRANCH_EXISTS"),
    ("push", "To /srv/o.git\n ! [rejected]        main -> main (fetch first)\nerror: failed to push some refs\n"
             "hint: Updates were rejected because the remote contains work", 409, "GIT_PUSH_REJECTED"),
    ("push", " ! [remote rejected] main -> main (pre-receive hook declined)\nerror: failed to push some refs", 422,
     "GIT_REMOTE_REJECTED"),
    ("checkout", "error: Your local changes to the following files would be overwritten by checkout:\n\tREADME.md\n"
                 "Please commit your changes or stash them before you switch branches.\nAborting", 409,
     "GIT_DIRTY_WORKTREE"),
    ("clone", "fatal: unable to access 'http://127.0.0.1:9/x.git/': Failed to connect to 127.0.0.1 port 9 after 0 "
              "ms: Couldn't connect to server", 502, "GIT_TRANSPORT_FAILED"),
    ("clone", "fatal: unable to access 'https://nowhere.invalid/x/': Could not resolve host: nowhere.invalid", 502,
     "GIT_TRANSPORT_FAILED"),
    ("clone", "fatal: destination path 'work' already exists and is not an empty directory.", 409,
     "GIT_ALREADY_EXISTS"),
    ("pull", "hint: You have divergent branches and need to specify how to reconcile them.\nfatal: Need to specify "
             "how to reconcile divergent branches.", 409, "GIT_BRANCHES_DIVERGED"),
    ("pull", "There is no tracking information for the current branch.", 400, "GIT_NO_UPSTREAM"),
    ("add", "fatal: pathspec 'nosuch' did not match any files", 404, "FILE_NOT_FOUND"),
    ("clone", "fatal: could not create leading directories of '/root/x': Permission denied", 403,
     "FILE_ACCESS_DENIED"),
    ("commit", "Author identity unknown\n\n*** Please tell me who you are.", 400, "GIT_IDENTITY_UNKNOWN"),
    ("status", "fatal: something new and strange", 400, "GIT_COMMAND_FAILED"),
])
def test_refusals(op: str, err: str, status: int, code: str) -> None:
    failure = classify(op, failed(err))
    assert (failure.status, failure.code) == (status, code), failure.message


def test_verdicts_read_stdout_too() -> None:
    merge = failed("", "Auto-merging README.md\nCONFLICT (content): Merge conflict in README.md\n"
                       "Automatic merge failed; fix conflicts and then commit the result.\n", code=1)
    assert classify("pull", merge).code == "GIT_MERGE_CONFLICT"
    clean = failed("", "On branch main\nnothing to commit, working tree clean\n", code=1)
    assert (classify("commit", clean).status, classify("commit", clean).code) == (409, "GIT_NOTHING_TO_COMMIT")
    assert classify("commit", clean).message.endswith("nothing to commit, working tree clean")


def test_message_is_gits_own_without_hints_or_secrets() -> None:
    message = git_message(failed("hint: try this\nfatal: unable to access 'https://me:tok@h/r.git/': boom\n"))
    assert message == "fatal: unable to access 'https://***@h/r.git/': boom"
    assert git_message(failed("", "", code=3)) == "git exited with code 3"
