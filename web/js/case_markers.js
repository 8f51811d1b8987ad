// Case markers on the map (案件分布): every case with a location is a marker on the worker map,
// coloured by where it stands in the loop, shaped by priority, outlined yellow/red by its
// supervision alert. The open cases are loaded once subscribed; after that the markers follow
// the cases panel's changes (cases.js onChange), so there is one data path for live cases.

import { caseApi } from "./case_api.js";
import { alertOf, priorityLabel, stateLabel } from "./case_rules.js";
import { onLangChange, t } from "./i18n.js";

const SVG_NS = "http://www.w3.org/2000/svg";
/** The largest page GET /api/v1/cases serves. */
const PAGE_LIMIT = 500;
/** Pages read at most on a load: the map shows at most this many thousand open cases. */
const MAX_PAGES = 10;
/** Colour groups of the states (console.css .case-marker.group-*). */
const GROUPS = {
  reported: "new",
  registered: "new",
  assigned: "active",
  handling: "active",
  fed_back: "active",
  closed: "done",
  evaluated: "done",
  rejected: "rejected",
};
const SIZE = { normal: 9, urgent: 10, emergency: 11 };
/** Radius of the pulsing ring around urgent and emergency cases. */
const RING_GAP = 6;

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

function located(kase) {
  const at = kase?.location;
  return Boolean(at) && Number.isFinite(at.lat) && Number.isFinite(at.lon);
}

/** The marker's body: a circle, or a diamond for emergencies; a ring when not normal. */
function shapes(priority) {
  const r = SIZE[priority] ?? SIZE.normal;
  const body =
    priority === "emergency"
      ? svg("path", { d: `M0,${-r - 2}L${r + 2},0L0,${r + 2}L${-r - 2},0Z` })
      : svg("circle", { r });
  body.setAttribute("class", "case-marker-body");
  if (priority === "normal" || !SIZE[priority]) return [body];
  return [svg("circle", { r: r + RING_GAP, class: "case-marker-ring" }), body];
}

/**
 * The markers. `overlay` is the map's overlay API (map.js); `onOpen(caseId)` opens the detail.
 * Feed it with `apply(kase)` / `remove(id)` (the cases panel's changes) and `reload()`.
 */
export function createCaseMarkers(overlay, { token, onOpen }) {
  const api = caseApi(token);
  const cases = new Map(); // id -> the case as last seen
  const markers = new Map(); // id -> {node, priority}
  const touched = new Set(); // ids changed live while a load is in flight
  let generation = 0;
  let stopped = false;

  function describe(kase) {
    const status = [stateLabel(kase.state), priorityLabel(kase.priority)];
    const alert = alertOf(kase);
    if (alert) status.push(t(`case.alert.${alert}`));
    const lines = [`${kase.number} ${kase.title}`, status.join(" · ")];
    if (kase.location?.address) lines.push(kase.location.address);
    return lines;
  }

  function create(id, priority) {
    const node = svg("g", { "data-case-id": id, role: "button", tabindex: 0 });
    node.append(...shapes(priority));
    node.addEventListener("mousemove", (event) => {
      const kase = cases.get(id);
      if (kase) overlay.showTooltip(event, describe(kase));
    });
    node.addEventListener("mouseleave", overlay.hideTooltip);
    node.addEventListener("click", () => {
      overlay.hideTooltip();
      onOpen(id);
    });
    node.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        onOpen(id);
      }
    });
    overlay.layer.append(node);
    return { node, priority };
  }

  function draw(kase) {
    const at = located(kase) ? overlay.project(kase.location.lon, kase.location.lat) : null;
    let marker = markers.get(kase.id);
    if (!at) {
      marker?.node.remove();
      markers.delete(kase.id);
      return;
    }
    if (marker && marker.priority !== kase.priority) {
      marker.node.remove();
      marker = null;
    }
    if (!marker) {
      marker = create(kase.id, kase.priority);
      markers.set(kase.id, marker);
    }
    const alert = alertOf(kase);
    const { node } = marker;
    node.setAttribute("transform", `translate(${at[0].toFixed(1)},${at[1].toFixed(1)})`);
    node.setAttribute(
      "class",
      `case-marker state-${kase.state} group-${GROUPS[kase.state] ?? "new"} ` +
        `priority-${kase.priority}${alert ? ` alert-${alert}` : ""}`,
    );
    node.dataset.state = kase.state;
    node.dataset.alert = alert;
    node.setAttribute("aria-label", describe(kase).join(" · "));
  }

  function redraw() {
    for (const kase of cases.values()) draw(kase);
  }

  /** Take a case as it now stands (an older version than the one shown is ignored). */
  function apply(kase) {
    if (stopped || !kase?.id) return;
    const known = cases.get(kase.id);
    if (known && Number(known.version) > Number(kase.version)) return;
    touched.add(kase.id);
    if (!located(kase)) {
      remove(kase.id);
      return;
    }
    cases.set(kase.id, kase);
    draw(kase);
  }

  function remove(id) {
    cases.delete(id);
    markers.get(id)?.node.remove();
    markers.delete(id);
  }

  /** Load the open cases again (after subscribing, or a reconnect that lost events). */
  async function reload() {
    const mine = ++generation;
    touched.clear();
    const fresh = new Map();
    let cursor;
    try {
      for (let page = 0; page < MAX_PAGES; page++) {
        const answer = await api.list({ open: true, limit: PAGE_LIMIT, cursor });
        if (stopped || mine !== generation) return;
        for (const kase of answer.items ?? []) fresh.set(kase.id, kase);
        cursor = answer.next_cursor;
        if (!cursor) break;
      }
    } catch {
      return; // the cases panel shows the failure; the markers keep what they have
    }
    // Cases changed live meanwhile are newer than the pages; the rest are as the pages say.
    for (const id of [...cases.keys()]) {
      if (!fresh.has(id) && !touched.has(id)) remove(id);
    }
    for (const kase of fresh.values()) {
      if (!touched.has(kase.id)) apply(kase);
    }
  }

  const stopProjection = overlay.onProjection(redraw);
  const stopLang = onLangChange(redraw);

  return {
    apply,
    remove,
    reload,
    destroy() {
      stopped = true;
      stopProjection();
      stopLang();
      overlay.layer.replaceChildren();
      cases.clear();
      markers.clear();
    },
  };
}
