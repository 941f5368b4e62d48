"""The host firewall as data: base rules scoped to the bridge, allow-list chains, jumps parsed back."""

from __future__ import annotations

from corral_runner.domain import network_policy as np


def test_base_rules_refuse_the_forbidden_and_are_scoped_to_the_bridge() -> None:
    rules = np.base_rules("br-x", ["10.9.0.0/16"])
    assert all(rule[:2] == ["-i", "br-x"] for chain in rules.values() for rule in chain)
    guard = [" ".join(r) for r in rules[np.GUARD_CHAIN]]
    for forbidden in ("-o br-x", "-o br-+", "-o docker+", "--ctstate DNAT", "-d 169.254.0.0/16", "-d 10.9.0.0/16"):
        assert any(forbidden in rule and rule.endswith("icmp-admin-prohibited") for rule in guard), forbidden
    assert guard[-1] == f"-i br-x -j {np.SANDBOXES_CHAIN}"  # allow lists come after the forbidden
    host = [" ".join(r) for r in rules[np.HOST_CHAIN]]
    assert "ESTABLISHED,RELATED -j RETURN" in host[0] and host[-1].endswith("icmp-admin-prohibited")


def test_an_allow_list_chain_and_its_jump_round_trip_through_a_listing() -> None:
    assert np.sandbox_rules(("1.2.3.0/24",)) == [["-d", "1.2.3.0/24", "-j", "RETURN"], np.REFUSE]
    sid = "0f8b0c5e-1234-4abc-9def-0123456789ab"
    listing = ("-N CORRAL-SANDBOXES\n-A CORRAL-SANDBOXES -s 172.18.0.5/32 -i br-x -m comment --comment "
               f"\"corral r-1 {sid}\" -j {np.sandbox_chain(sid)}\n")
    [jump] = np.parse_jumps(listing)
    assert (jump.runner_id, jump.sandbox_id, jump.chain) == ("r-1", sid, "CRL-0f8b0c5e12344abc9def0123")
    assert len(jump.chain) <= 28 and jump.spec.startswith("-s 172.18.0.5/32")
    script = np.restore_script({jump.chain: []}, deletions=[(np.SANDBOXES_CHAIN, jump.spec)])
    assert script.startswith("*filter\n:CRL-") and script.endswith("COMMIT\n")


def test_block_all_needs_no_chain_and_an_allow_list_does() -> None:
    assert not np.policy(True, ["1.2.3.4/32"]).connected and not np.policy(True, ["1.2.3.4/32"]).restricted
    assert np.policy(False, ["1.2.3.4/32"]).restricted and not np.policy(False, []).restricted
