"""SSH login keys in the dashboard (Streamlit AppTest against the stack's API process): a user
pastes a public key on My keys and removes it; an admin sees and revokes a user's keys."""

from __future__ import annotations

from tests.accounts.sshkeys import fingerprint_of, keygen, public_line
from tests.dashboard.conftest import log_in, new_app, texts


def test_a_user_adds_a_pasted_key_and_removes_it(stack, make_user, tmp_path):
    account = make_user("viewer")
    at = log_in(new_app(), account)
    at.switch_page("views/keys.py").run()
    assert not at.exception and "No SSH keys yet." in texts(at)
    key = keygen(tmp_path, "pasted")
    at.text_area(key="key_add_line").input("ssh-rsa AAAAB3NzaC1yc2E nope")
    at.button(key="FormSubmitter:add_key-Add key").click().run()
    assert "unsupported key type 'ssh-rsa'" in texts(at)
    at.text_area(key="key_add_line").input(public_line(key))
    at.button(key="FormSubmitter:add_key-Add key").click().run()
    assert f"Added ssh-ed25519 key {fingerprint_of(key)}" in texts(at)
    at.run()
    assert list(at.dataframe[0].value["fingerprint"]) == [fingerprint_of(key)]
    at.selectbox(key="key_remove_fp").select(fingerprint_of(key))
    at.button(key="FormSubmitter:remove_key-Remove key").click().run()
    assert f"Removed {fingerprint_of(key)}" in texts(at)
    assert at.session_state["client"].keys() == []


def test_an_admin_sees_a_users_keys_and_revokes_one(stack, make_user, tmp_path):
    owner, admin = make_user("operator"), make_user("admin")
    at = log_in(new_app(), admin)
    at.switch_page("views/admin.py").run()
    at.selectbox(key="admin_keys_user").select(owner.username).run()
    assert f"{owner.username} has no SSH login keys." in texts(at)
    key = keygen(tmp_path, "theirs")
    at.text_area(key="admin_key_line").input(public_line(key))
    at.button(key="FormSubmitter:admin_add_key-Add key").click().run()
    assert not at.exception and f"Added {fingerprint_of(key)} for {owner.username}" in texts(at)
    at.run()
    assert [row for row in at.table[0].value["fingerprint"]] == [fingerprint_of(key)]
    at.button(key="FormSubmitter:admin_remove_key-Remove key").click().run()
    assert f"Removed {fingerprint_of(key)} of {owner.username}" in texts(at)
    assert at.session_state["client"].keys(owner.username) == []
