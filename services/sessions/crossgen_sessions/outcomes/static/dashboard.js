"use strict";
// The program owner's dashboard. Fetches the overview and the at-risk list with the owner's
// bearer token and draws them as inline SVG: no library, so it works without internet access.
// Data goes into the page only as text (textContent, attributes), never as markup.

const SVG = "http://www.w3.org/2000/svg";
const BENEFITS = ["knowledge", "skills", "communication", "perspectives", "cultural_awareness", "learning"];
const TOKEN_KEY = "crossgen-token";

function draw(parent, name, attributes = {}, text = undefined) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = String(text);
  parent.appendChild(node);
  return node;
}

function titled(node, text) {
  draw(node, "title", {}, text);
  return node;
}

// The token arrives in the fragment once; the tab keeps it, the address bar and history do not.
function bearerToken() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.has("token")) {
    sessionStorage.setItem(TOKEN_KEY, fragment.get("token"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

async function call(path, token) {
  const response = await fetch(new URL(path, document.baseURI), {
    headers: { Authorization: `Bearer ${token}` },
  });
  if (!response.ok) {
    let detail = response.statusText;
    try {
      detail = (await response.json()).detail;
    } catch {
      // not JSON: keep the status text
    }
    throw new Error(`${response.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return response;
}

function drawFunnel(svg, pairings) {
  const stages = [
    ["Accepted", pairings.accepted],
    ["Scheduled a session", pairings.scheduled],
    ["Met", pairings.met],
    ["Rated a session", pairings.rated],
  ];
  const most = Math.max(1, ...stages.map(([, count]) => count));
  stages.forEach(([label, count], i) => {
    const y = 8 + i * 50;
    const width = Math.max(2, (380 * count) / most);
    draw(svg, "text", { x: 0, y: y + 23 }, label);
    titled(
      draw(svg, "rect", { x: 170 + (380 - width) / 2, y, width, height: 36, rx: 4, class: "funnel-stage" }),
      `${label}: ${count}`,
    );
    draw(svg, "text", { x: 360, y: y + 23, "text-anchor": "middle", class: "value" }, count);
  });
}

function drawWeekly(svg, weeks) {
  const most = Math.max(1, ...weeks.map((w) => w.held + w.no_shows));
  const left = 34, bottom = 180, height = 160;
  const step = (560 - left - 6) / weeks.length;
  const width = step * 0.6;
  draw(svg, "line", { x1: left, y1: bottom, x2: 554, y2: bottom, class: "axis" });
  draw(svg, "text", { x: left - 6, y: bottom, "text-anchor": "end", class: "tick" }, 0);
  draw(svg, "text", { x: left - 6, y: bottom - height + 8, "text-anchor": "end", class: "tick" }, most);
  weeks.forEach((week, i) => {
    const x = left + step * i + (step - width) / 2;
    const held = (height * week.held) / most;
    const missed = (height * week.no_shows) / most;
    titled(
      draw(svg, "rect", { x, y: bottom - held, width, height: held, class: "bar-held" }),
      `${week.week}: ${week.held} held`,
    );
    titled(
      draw(svg, "rect", { x, y: bottom - held - missed, width, height: missed, class: "bar-no-show" }),
      `${week.week}: ${week.no_shows} no-shows`,
    );
    draw(svg, "text", { x: x + width / 2, y: bottom + 16, "text-anchor": "middle", class: "tick" }, week.week.slice(5));
  });
}

function drawRadar(svg, benefits) {
  const cx = 210, cy = 150, radius = 105;
  const at = (i, rating) => {
    const angle = -Math.PI / 2 + (i * 2 * Math.PI) / BENEFITS.length;
    const distance = (radius * rating) / 5;
    return `${(cx + distance * Math.cos(angle)).toFixed(1)},${(cy + distance * Math.sin(angle)).toFixed(1)}`;
  };
  for (let level = 1; level <= 5; level++) {
    draw(svg, "polygon", { points: BENEFITS.map((_, i) => at(i, level)).join(" "), class: "radar-grid" });
  }
  BENEFITS.forEach((benefit, i) => {
    const [x, y] = at(i, 5).split(",");
    const [lx, ly] = at(i, 5.9).split(",");
    draw(svg, "line", { x1: cx, y1: cy, x2: x, y2: y, class: "radar-axis" });
    draw(svg, "text", { x: lx, y: Number(ly) + 4, "text-anchor": "middle" }, benefit.replace("_", " "));
  });
  for (const side of ["learner", "mentor"]) {
    const averages = benefits[side];
    if (BENEFITS.some((b) => averages[b] === null)) continue; // that side has rated nothing yet
    titled(
      draw(svg, "polygon", { points: BENEFITS.map((b, i) => at(i, averages[b])).join(" "), class: `radar-${side}` }),
      `${side}s: ` + BENEFITS.map((b) => `${b.replace("_", " ")} ${averages[b]}`).join(", "),
    );
  }
}

function fillAtRisk(tbody, risks) {
  const day = (iso) => iso.slice(0, 10);
  const why = { stalled: "Stalled", no_shows: "No-shows" };
  if (risks.length === 0) {
    const cell = tbody.insertRow().insertCell();
    cell.colSpan = 5;
    cell.textContent = "No pairing is at risk.";
    return;
  }
  for (const risk of risks) {
    const row = tbody.insertRow();
    row.className = "at-risk-row";
    row.dataset.pairingId = risk.pairing_id;
    for (const text of [
      risk.learner_person_id,
      risk.mentor_person_id,
      `${why[risk.reason] ?? risk.reason}: ${risk.detail}`,
      day(risk.since),
      day(risk.detected_at),
    ]) {
      row.insertCell().textContent = text;
    }
  }
}

async function downloadCsv(programId, token) {
  const blob = await (await call(`programs/${programId}/outcomes.csv`, token)).blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `outcomes-${programId}.csv`;
  link.click();
  URL.revokeObjectURL(link.href);
}

async function main() {
  const message = document.getElementById("message");
  const programId = new URLSearchParams(location.search).get("program_id");
  const token = bearerToken();
  if (!programId || !token) {
    throw new Error("Open this page as /dashboard?program_id=<program id>#token=<bearer token>.");
  }
  document.getElementById("program").textContent = `Program ${programId}`;
  const [overview, risks] = await Promise.all([
    call(`programs/${programId}/overview`, token).then((r) => r.json()),
    call(`programs/${programId}/pairings-at-risk`, token).then((r) => r.json()),
  ]);
  const pairings = overview.pairings;
  drawFunnel(document.getElementById("funnel"), pairings);
  document.getElementById("standing").textContent =
    `${pairings.active} active, ${pairings.ended} ended, ${pairings.at_risk} at risk; ` +
    `${overview.hours_held} hours held`;
  drawWeekly(document.getElementById("weekly"), overview.sessions_per_week);
  drawRadar(document.getElementById("radar"), overview.benefits);
  fillAtRisk(document.querySelector("#at-risk tbody"), risks);
  const exportButton = document.getElementById("export");
  exportButton.disabled = false;
  exportButton.addEventListener("click", () =>
    downloadCsv(programId, token).catch((error) => (message.textContent = error.message)),
  );
  message.textContent = "";
}

main().then(
  () => (document.body.dataset.state = "ready"),
  (error) => {
    document.body.dataset.state = "error";
    document.getElementById("message").textContent = error.message;
  },
);
