"""The run report's proof-of-reserves part: each venue's attestations over the run, the same
venue with and without a published proof (a `customers_like` twin), and `por-verify.html`, a
static page that checks an inclusion proof in the browser exactly as `bankrun por verify` does.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from bankrun import events as ev
from bankrun.scenario import Scenario, ScenarioError, parse

HOUR = 3600.0
VERIFIER = "por-verify.html"


def figure(found: dict[str, list[ev.PorAttested]]) -> bytes:
    """Each venue's solvency ratio at every attestation (a step: it holds until the next)."""
    from bankrun.report import png, pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(16, 3))
    for venue, items in found.items():
        xs = [a.scenario_time / HOUR for a in items if a.ratio is not None]
        ys = [a.ratio for a in items if a.ratio is not None]
        if xs:
            style = "-" if items[-1].published else "--"
            ax.step(xs, ys, where="post", linestyle=style, marker="o", label=venue)
    ax.axhline(1.0, color="grey", linewidth=1, linestyle=":")
    ax.set_title(
        "proof of reserves: reserves that count / liabilities the sum tree commits to "
        "(dashed: not published)",
        fontsize=9,
    )
    ax.set_xlabel("scenario hours", fontsize=7)
    ax.legend(fontsize=7)
    return png(fig)


def twins(scenario: Scenario | None, rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each venue drawn with another's customers (`customers_like`) set beside that venue:
    the same customers and news, one change. Money claimed and paid, and the differences."""
    if scenario is None:
        return []
    out = []
    for venue in scenario.venues:
        like = venue.customers_like
        if like is None or venue.id not in rows or like not in rows:
            continue
        this, that = rows[venue.id], rows[like]
        out.append(
            {
                "venue": venue.id,
                "like": like,
                "por": _por_label(this),
                "like_por": _por_label(that),
                "claimed": this["amount_claimed"],
                "like_claimed": that["amount_claimed"],
                "paid": this["amount_paid"],
                "like_paid": that["amount_paid"],
                "claimed_difference": this["amount_claimed"] - that["amount_claimed"],
            }
        )
    return out


def _por_label(row: dict[str, Any]) -> str:
    proof = row.get("proof_of_reserves")
    if not proof:
        return "none"
    return "published" if proof["published"] else "auditor only"


def scenario_of(run_dir: Path) -> Scenario | None:
    try:
        return parse((run_dir / "scenario.yaml").read_text(), "scenario.yaml")
    except (OSError, ScenarioError):
        return None


def section(result: dict[str, Any], pairs: list[dict[str, Any]]) -> str:
    """The HTML: a status table, the twins' comparison, and the verifier's link."""
    e = html.escape
    rows = ""
    for venue, row in result["venues"].items():
        proof = row.get("proof_of_reserves")
        if not proof:
            continue
        cells = (
            _por_label(row),
            str(proof["attestations"]),
            _pct(proof["first_ratio"]),
            _pct(proof["min_ratio"]),
            _pct(proof["last_ratio"]),
            "yes"
            if proof["solvent_throughout"]
            else f"no (from {proof['first_insolvent_at_hours']:.0f} h)",
            proof["last_root"][:16] + "…",
        )
        rows += f"<tr><td>{e(venue)}</td>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>"
    if not rows:
        return ""
    compared = ""
    for p in pairs:
        compared += (
            f"<tr><td>{e(p['like'])} ({e(p['like_por'])})</td><td>{_usd(p['like_claimed'])}</td>"
            f"<td>{_usd(p['like_paid'])}</td><td>{e(p['venue'])} ({e(p['por'])})</td>"
            f"<td>{_usd(p['claimed'])}</td><td>{_usd(p['paid'])}</td>"
            f"<td>{_usd(p['claimed_difference'])}</td></tr>"
        )
    twins_html = (
        f"""<h3>The same venue with and without</h3>
<p>Each pair has the same customers (balances, thresholds) and hears the same news.</p>
<table id="por-twins"><tr><th>venue</th><th>money asked for</th><th>paid</th><th>twin</th>
<th>money asked for</th><th>paid</th><th>twin asked more by</th></tr>{compared}</table>"""
        if compared
        else ""
    )
    return f"""<h2>Proof of reserves</h2>
<table id="por"><tr><th>venue</th><th>proof</th><th>attestations</th><th>first ratio</th>
<th>lowest</th><th>last</th><th>solvent throughout</th><th>last root</th></tr>{rows}</table>
{twins_html}
<p>Check an inclusion proof (<code>GET /por/&#123;venue&#125;/proof</code>) offline:
<code>bankrun por verify PROOF.json --root ROOT</code>, or in this browser:
<a href="{VERIFIER}">{VERIFIER}</a>.</p>"""


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _usd(minor: int) -> str:
    return f"${minor / 100:,.0f}"


def write_verifier(run_dir: Path) -> Path:
    path = run_dir / VERIFIER
    path.write_text(VERIFIER_PAGE)
    return path


#: The checker, in the browser's own SHA-256 (Web Crypto) and BigInt: the same leaf and node
#: hashes as `bankrun.domain.por`, bounds checked at every level. Amounts are read as text
#: (JSON numbers lose digits past 2^53; a wei balance has more).
VERIFIER_SCRIPT = r"""
const BOUND = 1n << 128n;
const enc = new TextEncoder();
function hex(bytes) { return [...bytes].map(b => b.toString(16).padStart(2, "0")).join(""); }
function unhex(text) {
  if (!/^([0-9a-f]{2})*$/.test(text)) throw new Error("not hex: " + text.slice(0, 16));
  return Uint8Array.from(text.match(/../g) || [], h => parseInt(h, 16));
}
function amount(n) {
  const out = new Uint8Array(16);
  for (let i = 15; i >= 0; i--) { out[i] = Number(n & 255n); n >>= 8n; }
  return out;
}
function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}
async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}
function bounded(value, what) {
  if (value < 0n) throw new Error(what + " " + value + " is negative");
  if (value >= BOUND) throw new Error(what + " " + value + " is over the bound 2^128");
}
function parseProof(text) {
  const quoted = text.replace(/"(balance|sum)"\s*:\s*(-?\d+)/g, '"$1":"$2"');
  let data = JSON.parse(quoted);
  if (data && data.proof && data.attestation) data = data.proof;
  if (!data || data.scheme !== "bankrun-por/v1") throw new Error("not a bankrun-por/v1 proof");
  return data;
}
async function verifyProof(text, rootHex, totalText) {
  try {
    const proof = parseProof(text);
    rootHex = rootHex.trim();
    if (!/^[0-9a-f]{64}$/.test(rootHex)) throw new Error("a root hash is 64 lowercase hex digits");
    const balance = BigInt(proof.balance);
    bounded(balance, "the balance");
    const context = concat(enc.encode(proof.venue), [0], enc.encode(proof.asset), [0]);
    let node = await sha256(concat([0], amount(balance), unhex(proof.salt), context,
                                   enc.encode(proof.account)));
    let total = balance;
    for (const [level, step] of proof.path.entries()) {
      const sum = BigInt(step.sum);
      bounded(sum, "level " + level + ": the sibling's sum");
      const sibling = unhex(step.hash);
      node = step.side === "left"
        ? await sha256(concat([1], sibling, amount(sum), node, amount(total)))
        : await sha256(concat([1], node, amount(total), sibling, amount(sum)));
      total += sum;
      bounded(total, "level " + (level + 1) + ": the node's sum");
    }
    if (hex(node) !== rootHex) {
      return {ok: false, reason: "the proof leads to root " + hex(node) + ", not " + rootHex};
    }
    if (totalText && totalText.trim() && BigInt(totalText.trim()) !== total) {
      return {ok: false, reason: "the root commits to a total of " + total + ", not " + totalText};
    }
    return {ok: true, reason: proof.account + " with " + balance + " is in the tree of " +
            proof.venue + " (" + proof.asset + "), total " + total, total: total.toString()};
  } catch (error) {
    return {ok: false, reason: String(error.message || error)};
  }
}
"""

VERIFIER_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bankrun — verify a proof of reserves</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; max-width: 60em; }}
textarea, input {{ width: 100%; font-family: monospace; }}
#result.ok {{ color: #060; }} #result.bad {{ color: #a00; }}
</style></head><body>
<h1>Verify a proof of reserves</h1>
<p>Paste your inclusion proof (the JSON of <code>GET /por/&#123;venue&#125;/proof</code>, or
its <code>proof</code>) and the root the venue published (<code>GET /por/&#123;venue&#125;</code>).
Everything happens in this page: nothing is sent anywhere.</p>
<p><label>proof<br><textarea id="proof" rows="14"></textarea></label></p>
<p><label>published root hash<br><input id="root"></label></p>
<p><label>published total (optional)<br><input id="total"></label></p>
<p><button id="check">verify</button></p>
<p id="result"></p>
<script>{VERIFIER_SCRIPT}
document.getElementById("check").addEventListener("click", async () => {{
  const out = document.getElementById("result");
  const found = await verifyProof(document.getElementById("proof").value,
    document.getElementById("root").value, document.getElementById("total").value);
  out.className = found.ok ? "ok" : "bad";
  out.textContent = (found.ok ? "valid: " : "invalid: ") + found.reason;
}});
</script>
</body></html>
"""
