"""Core's gateway for worker hosts: Prefect's API as one worker token may use it.

A worker host holds a worker token (`swarmsync.auth.worker_tokens`) and `PREFECT_API_URL` pointing at
`https://CORE/worker/prefect/api`. Every call is checked against the token's pool (`rules.py` says what a
call is, `scope.py` whether this token may make it) and forwarded to Prefect with Core's own credentials
(`proxy.py`); events go both ways over websockets, filtered the same way (`events.py`).
"""
