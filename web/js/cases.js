// The cases panel (案件): the cases the signed-in user may see, newest first, filtered by
// state, open only, mine and alerts; kept current by the live case.* events (each event's case
// is fetched again, its row refreshed, a new case inserted at the top, a case that no longer
// matches the filters removed).

import { caseApi, errorText } from "./case_api.js";
import { alertOf, OPEN, categoryIndex, priorityLabel, stateLabel } from "./case_rules.js";
import { el, formatTime } from "./format.js";
import { onLangChange, t } from "./i18n.js";

const PAGE = 50;
/** Event ids remembered to drop the copy that arrives on a second channel. */
const MAX_SEEN = 2000;

/**
 * The panel. `elements`: {filters (form), tbody, empty, count, more, error}; `options`:
 * {token, claims, orgName(path), onOpen(caseId), onCase(kase) after each fetched change}.
 */
export function createCasesPanel(elements, { token, claims, orgName, onOpen, onCase = () => {} }) {
  const api = caseApi(token);
  const rows = new Map(); // id -> {kase, row}
  const seen = new Set();
  const pending = new Map(); // id -> Promise of the refetch in flight
  const listeners = new Set(); // fn(kase) for each case as it now stands, fn(null, id) if gone
  const notify = (kase, id = kase.id) => listeners.forEach((fn) => fn(kase, id));
  let categories = categoryIndex(null);
  let cursor = null;
  let generation = 0; // bumped by each reload; stale pages are dropped
  let stopped = false;

  function filters() {
    const form = elements.filters;
    return {
      state: form.elements.state.value || undefined,
      open: form.elements.open.checked ? true : undefined,
      assignee: form.elements.mine.checked ? "me" : undefined,
      alert: form.elements.alert.value || undefined,
    };
  }

  function matches(kase) {
    const f = filters();
    if (f.state && kase.state !== f.state) return false;
    if (f.open && !OPEN.has(kase.state)) return false;
    if (f.assignee && kase.assignee !== claims.user) return false;
    if (f.alert && alertOf(kase) !== f.alert) return false;
    return true;
  }

  function render(kase) {
    const alert = alertOf(kase);
    const row = el("tr", `case-row state-${kase.state}${alert ? ` alert-${alert}` : ""}`);
    row.dataset.caseId = kase.id;
    row.dataset.state = kase.state;
    row.dataset.alert = alert;
    row.tabIndex = 0;
    const title = el("td", "case-title");
    title.append(el("span", "", kase.title));
    const deadline = el("td", "case-deadline", kase.due_at ? formatTime(kase.due_at) : "—");
    if (alert) {
      deadline.append(el("span", `alert-badge alert-${alert}`, t(`case.alert.${alert}`)));
    }
    row.append(
      el("td", "case-number", kase.number),
      title,
      el("td", "case-category", categories.label(kase.category)),
      badgeCell("priority", kase.priority, priorityLabel(kase.priority)),
      badgeCell("state", kase.state, stateLabel(kase.state)),
      el("td", "case-centre", orgName(kase.tier_org)),
      deadline,
    );
    row.addEventListener("click", () => onOpen(kase.id));
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter") onOpen(kase.id);
    });
    return row;
  }

  function badgeCell(kind, value, text) {
    const cell = el("td", `case-${kind}`);
    cell.append(el("span", `badge ${kind}-${value}`, text));
    return cell;
  }

  function updateCount() {
    elements.count.textContent = rows.size ? t("cases.count", { count: rows.size }) : "";
    elements.empty.hidden = rows.size > 0;
    elements.more.hidden = cursor === null;
  }

  /** Put `kase` where it belongs (ids are ULIDs: newest first is id order). */
  function place(kase) {
    const existing = rows.get(kase.id);
    if (!matches(kase)) {
      existing?.row.remove();
      rows.delete(kase.id);
      return;
    }
    const row = render(kase);
    if (existing) {
      existing.row.replaceWith(row);
    } else {
      const after = [...rows.values()].find((entry) => entry.kase.id < kase.id);
      // Older than everything shown while more pages remain: a later page holds it.
      if (!after && cursor !== null) return;
      elements.tbody.insertBefore(row, after ? after.row : null);
    }
    rows.set(kase.id, { kase, row });
  }

  function showError(err) {
    elements.error.textContent = err ? t("cases.load_failed", { message: errorText(err) }) : "";
    elements.error.hidden = !err;
  }

  async function loadPage(first) {
    const mine = first ? ++generation : generation;
    try {
      const page = await api.list({ ...filters(), limit: PAGE, cursor: first ? undefined : cursor });
      if (stopped || mine !== generation) return;
      if (first) {
        rows.clear();
        elements.tbody.replaceChildren();
      }
      cursor = page.next_cursor ?? null;
      for (const kase of page.items ?? []) {
        if (!rows.has(kase.id)) {
          const row = render(kase);
          elements.tbody.append(row);
          rows.set(kase.id, { kase, row });
        }
      }
      showError(null);
      updateCount();
    } catch (err) {
      if (!stopped && mine === generation) showError(err);
    }
  }

  /** Fetch one case again and show it as it now stands (one fetch at a time per case). */
  function refetch(id) {
    const previous = pending.get(id) ?? Promise.resolve();
    const next = previous.then(async () => {
      try {
        const kase = await api.get(id);
        if (stopped) return;
        place(kase);
        updateCount();
        onCase(kase);
        notify(kase);
      } catch (err) {
        if (err?.status === 404) notify(null, id);
        if (err?.status === 404 && rows.has(id)) {
          rows.get(id).row.remove();
          rows.delete(id);
          updateCount();
        }
      }
    });
    pending.set(id, next);
    next.finally(() => {
      if (pending.get(id) === next) pending.delete(id);
    });
    return next;
  }

  /** A live envelope (org or personal channel); true when it is about a case. */
  function apply(envelope) {
    if (!envelope?.type?.startsWith("case.") || !envelope.data?.case_id) return false;
    if (envelope.id) {
      if (seen.has(envelope.id)) return false;
      seen.add(envelope.id);
      if (seen.size > MAX_SEEN) seen.delete(seen.values().next().value);
    }
    refetch(envelope.data.case_id);
    return true;
  }

  function refresh() {
    for (const entry of rows.values()) {
      const row = render(entry.kase);
      entry.row.replaceWith(row);
      entry.row = row;
    }
    updateCount();
  }

  // The form outlives the session: its listeners go with the panel.
  const listening = new AbortController();
  const { signal } = listening;
  elements.filters.addEventListener("change", () => loadPage(true), { signal });
  elements.filters.addEventListener("submit", (event) => event.preventDefault(), { signal });
  elements.more.addEventListener("click", () => loadPage(false), { signal });
  const stopLang = onLangChange(refresh);
  api
    .categories()
    .then((tree) => {
      categories = categoryIndex(tree);
      if (!stopped) refresh();
    })
    .catch(() => {}); // codes are shown instead of names

  return {
    apply,
    /** Load the first page again (after subscribing, or a reconnect that lost events). */
    reload: () => loadPage(true),
    /** A case as an action returned it: show it at once (its event follows). */
    update(kase) {
      place(kase);
      updateCount();
      notify(kase);
    },
    /** Follow every case change the panel learns of, live or from an action, whether or not
     * its filters show the case: `fn(kase)`, or `fn(null, id)` when it is gone. */
    onChange(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    categories: () => categories,
    refresh,
    destroy() {
      stopped = true;
      listeners.clear();
      stopLang();
      listening.abort();
      rows.clear();
      elements.tbody.replaceChildren();
    },
  };
}
