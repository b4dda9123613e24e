"""The dashboard's Alerts page (AppTest against the session stack's API): an operator adds an alert through
the form and sees it listed with its webhook masked; a viewer reads it without a way to change it; its owner
removes it."""

from __future__ import annotations

import uuid

from swarmsync import alerts
from tests.dashboard.conftest import texts


def test_an_operator_adds_an_alert_a_viewer_reads_it_and_its_owner_removes_it(app_as):
    name = f"page-{uuid.uuid4().hex[:6]}"
    operator, account = app_as("operator")
    operator.switch_page("views/alerts.py").run()
    assert not operator.exception, operator.exception
    operator.text_input(key="alert_name").input(name)
    operator.selectbox(key="alert_on").select("failed")
    operator.text_input(key="alert_webhook").input("https://hooks.example.com/hook?token=s3cret")
    operator.selectbox(key="alert_project").select("default")
    operator.button(key="FormSubmitter:alert_add-Add alert").click().run()
    assert not operator.exception, operator.exception
    assert f"added alert {name}" in texts(operator)
    shown = alerts.get_alert(name, "default")
    assert shown.owner == account.username and shown.on == "failed"

    viewer, _ = app_as("viewer")
    viewer.switch_page("views/alerts.py").run()
    table = viewer.dataframe[0].value
    row = table[table["name"] == name].iloc[0]
    assert row["webhook"] == "https://hooks.example.com/h***?***" and row["owner"] == account.username
    assert not [b for b in viewer.button if b.key == "alert_remove"]  # read-only for viewers
    assert "s3cret" not in table.to_csv()

    operator.switch_page("views/alerts.py").run()
    operator.selectbox(key="alert_pick").select(f"default/{name}").run()
    next(b for b in operator.button if b.key == "alert_remove").click().run()
    assert not operator.exception, operator.exception
    assert name not in [a.name for a in alerts.list_alerts(["default"])]
