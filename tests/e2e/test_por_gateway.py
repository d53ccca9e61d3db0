"""Proof of reserves through the real services: custody attests at scenario time zero, the
gateway rebuilds the tree from the parts and serves each customer its inclusion proof, which
`bankrun por verify` checks offline against the published root."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from bankrun import scenario, workload
from bankrun.auth import bearer
from bankrun.runner import kafka
from bankrun.runner.processes import group_alive, wait_until
from bankrun.runner.stack import Stack

pytestmark = pytest.mark.e2e

SPEC = """
name: por-e2e
duration_hours: 2
venues:
  - {id: lit, policy: full-reserve, customers: 40, total_deposits: 4000000, por: {}}
  - {id: short, policy: fractional, customers: 10, total_deposits: 100000,
     params: {liquid_ratio: 0.1}, por: {count_less_liquid: false}}
load: {model: constant, amount_per_hour: 1000}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:
        env.delenv("BANKRUN_AUTH_SECRET", raising=False)
        env.delenv("BANKRUN_POR_SECRET", raising=False)
        the_stack = Stack(
            tmp_path_factory.mktemp("por"),
            f"por-{uuid.uuid4().hex[:8]}",
            services=("gateway", "custody"),
            prometheus=False,
        )
        with the_stack:
            spec = scenario.parse(SPEC)
            genesis = workload.genesis(spec, started_at=time.time(), speed=spec.speed)
            asyncio.run(kafka.publish(the_stack.bootstrap, genesis))
            yield the_stack
    assert not any(group_alive(pid) for pid in the_stack.pids())


@pytest.fixture(scope="module")
def api(stack):
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as client:
        for venue in ("lit", "short"):
            wait_until(
                lambda v=venue: client.get(f"/por/{v}").status_code == 200,
                60,
                f"{venue}'s attestation at the gateway",
            )
        yield client


def test_the_published_attestation_says_who_is_solvent(api):
    lit, short = api.get("/por/lit").json(), api.get("/por/short").json()
    assert (lit["liabilities"], lit["reserves"], lit["solvent"]) == (4_000_000, 4_000_000, True)
    assert lit["accounts"] == 40 and lit["scenario_hours"] == 0
    assert short["ratio"] == pytest.approx(0.1) and not short["solvent"]
    assert "balances" not in lit  # the root and totals are public, the balances are not


def test_a_customer_gets_a_proof_that_verifies_offline(api, stack, tmp_path):
    token = bearer(stack.auth.customer("lit", "cust-00007"))
    reply = api.get("/por/lit/proof", headers=token)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["proof"]["account"] == "cust-00007" and body["proof"]["balance"] > 0
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(body))
    published = api.get("/por/lit").json()
    verify = [str(Path(sys.executable).parent / "bankrun"), "por", "verify", str(path)]
    ok = subprocess.run(
        [*verify, "--root", published["root"], "--total", str(published["liabilities"])],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    forged = {**body, "proof": {**body["proof"], "balance": body["proof"]["balance"] + 1}}
    path.write_text(json.dumps(forged))
    bad = subprocess.run([*verify, "--root", published["root"]], capture_output=True, text=True)
    assert bad.returncode == 1


def test_only_the_account_or_the_operator_gets_a_proof(api, stack):
    minnow = bearer(stack.auth.customer("lit", "cust-00001"))
    assert api.get("/por/lit/proof").status_code == 401
    other = api.get("/por/lit/proof", params={"account": "cust-00002"}, headers=minnow)
    assert other.status_code == 403
    elsewhere = api.get("/por/short/proof", headers=minnow)
    assert elsewhere.status_code == 403  # a lit customer is not short's
    operator = bearer(stack.auth.operator())
    assert api.get("/por/lit/proof", headers=operator).status_code == 422  # whose?
    theirs = api.get("/por/lit/proof", params={"account": "cust-00002"}, headers=operator)
    assert theirs.status_code == 200 and theirs.json()["proof"]["account"] == "cust-00002"
    stranger = bearer(stack.auth.customer("lit", "nobody"))
    assert api.get("/por/lit/proof", headers=stranger).status_code == 404
    assert api.get("/por/nowhere").status_code == 404
