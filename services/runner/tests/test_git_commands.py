"""Git requests as argv plans: user values stay single arguments, never options, never shell text;
credentials never reach an argv."""

from __future__ import annotations

import pytest

from corral_runner.app import git_commands as commands
from corral_runner.app.git_commands import CREDENTIAL_HELPER, InvalidGitRequest
from corral_runner.app.git_exec import decode_results, encode_plan
from corral_runner.app.git_requests import (AddRequest, AuthenticateRequest, BranchRequest, CheckoutRequest,
                                            CloneRequest, CommitRequest, PullRequest, PushRequest, ResetRequest,
                                            RestoreRequest, SetConfigRequest)


def every_arg(plan: commands.Plan) -> list[str]:
    return [arg for step in plan.steps for arg in step.argv]


def test_clone_with_everything() -> None:
    plan = commands.clone(CloneRequest(url="https://h/r.git", path="w/r", branch="dev", commit_id="abc123",
                                       username="me", password="s3cret", insecure_skip_tls=True, depth=3))
    clone, checkout = plan.steps
    assert clone.argv[-6:] == ["clone", "--branch=dev", "--depth=3", "--", "https://h/r.git", "w/r"]
    assert "http.sslVerify=false" in clone.argv and "protocol.ext.allow=never" in clone.argv
    assert clone.argv[clone.argv.index("credential.helper=") - 1] == "-c"  # configured helpers are cleared first
    assert f"credential.helper={CREDENTIAL_HELPER}" in clone.argv
    assert checkout.argv == ["git", "-C", "w/r", "-c", "advice.detachedHead=false", "checkout", "--detach", "abc123",
                             "--"]
    assert plan.network and plan.credentials == commands.Credentials("me", "s3cret")
    assert not any("s3cret" in arg for arg in every_arg(plan))


def test_credentials_travel_only_in_the_plan_body() -> None:
    plan = commands.push(PushRequest(path="r", username="me", password="pa$$ 'word"))
    body = encode_plan(plan)
    assert b"pa$$ 'word" in body and not any("pa$$" in arg for arg in every_arg(plan))
    assert commands.pull(PullRequest(path="r", password="tok")).credentials == commands.Credentials("git", "tok")
    assert commands.pull(PullRequest(path="r")).credentials is None
    with pytest.raises(InvalidGitRequest):
        commands.push(PushRequest(path="r", username="me", password="two\nlines"))


@pytest.mark.parametrize("plan", [
    lambda: commands.checkout(CheckoutRequest(path="r", branch="--orphan=x")),
    lambda: commands.create_branch(BranchRequest(path="r", name="-D")),
    lambda: commands.clone(CloneRequest(url="u", path="p", branch="--upload-pack=touch /tmp/x")),
    lambda: commands.push(PushRequest(path="r", remote="--receive-pack=evil")),
    lambda: commands.reset(ResetRequest(path="r", target="--hard")),
    lambda: commands.reset(ResetRequest(path="r", mode="nuke")),
    lambda: commands.add(AddRequest(path="r", files=[])),
    lambda: commands.status(""),
    lambda: commands.clone(CloneRequest(url="u", path="p", depth=0)),
])
def test_option_looking_or_empty_values_are_refused(plan) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidGitRequest):
        plan()


def test_positional_values_follow_a_double_dash() -> None:
    assert commands.add(AddRequest(path="r", files=["-f", "a b.txt"])).steps[0].argv[-4:] == [
        "add", "--", "-f", "a b.txt"]
    clone = commands.clone(CloneRequest(url="--weird", path="-p")).steps[0].argv
    assert clone[-3:] == ["--", "--weird", "-p"]
    assert commands.status("-dir").steps[0].argv[:3] == ["git", "-C", "-dir"]  # -C always takes the next word


def test_commit_identity_is_author_and_committer() -> None:
    plan = commands.commit(CommitRequest(path="r", message="-m looks like an option", author="Ada", email="a@x",
                                         allow_empty=True))
    commit, rev_parse = plan.steps
    assert "--message=-m looks like an option" in commit.argv and "--allow-empty" in commit.argv
    assert commit.env == {"GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "Ada",
                          "GIT_COMMITTER_EMAIL": "a@x"}
    assert rev_parse.argv[-2:] == ["rev-parse", "HEAD"]


def test_push_and_pull_defaults() -> None:
    assert commands.push(PushRequest(path="r")).steps[0].argv[-3:] == ["push", "origin", "HEAD"]
    assert commands.push(PushRequest(path="r", branch="b", remote="up", set_upstream=True)).steps[0].argv[-4:] == [
        "push", "--set-upstream", "up", "b"]
    assert commands.pull(PullRequest(path="r")).steps[0].argv[-2:] == ["pull", "--no-edit"]
    assert commands.pull(PullRequest(path="r", branch="b")).steps[0].argv[-2:] == ["origin", "b"]


def test_restore_reset_config_and_stored_credentials() -> None:
    assert commands.restore(RestoreRequest(path="r", files=["f"])).steps[0].argv[-4:] == [
        "restore", "--worktree", "--", "f"]
    assert commands.restore(RestoreRequest(path="r", files=["f"], staged=True, source="HEAD~1")).steps[0].argv[-5:] \
        == ["restore", "--staged", "--source=HEAD~1", "--", "f"]
    assert commands.reset(ResetRequest(path="r", mode="hard", target="HEAD~1")).steps[0].argv[3:] == [
        "reset", "--quiet", "--hard", "HEAD~1", "--"]
    assert commands.reset(ResetRequest(path="r", files=["a"])).steps[0].argv[-3:] == ["HEAD", "--", "a"]
    local = commands.set_config(SetConfigRequest(key="user.name", value="-x", scope="local", path="r"))
    assert local.steps[0].argv == ["git", "-C", "r", "config", "--local", "--replace-all", "--", "user.name", "-x"]
    with pytest.raises(InvalidGitRequest):
        commands.set_config(SetConfigRequest(key="a.b", value="v", scope="local"))
    stored = commands.authenticate(AuthenticateRequest(username="u", password="p"))
    assert stored.steps[1].input == "protocol=https\nhost=github.com\nusername=u\npassword=p\n\n"
    assert not any(arg == "p" for arg in every_arg(stored))


def test_results_are_read_after_the_marker() -> None:
    from corral_runner.app.git_exec import MARKER
    output = f"noise\n{MARKER}[[0, \"aGk=\", \"\"], [1, \"\", \"fatal: x\"]]\n".encode()
    first, second = decode_results(output) or []
    assert (first.code, first.out, second.code, second.err) == (0, b"hi", 1, "fatal: x")
    assert decode_results(b"Traceback: no python") is None
