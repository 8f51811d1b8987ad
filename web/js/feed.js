// The live event feed: one row per publication on the org channel, newest first, bounded.
// worker.position is left out (one per worker per second would drown everything else):
// the map shows it.

import { el, formatTime } from "./format.js";
import { has, onLangChange, t } from "./i18n.js";

const MAX_ROWS = 200;
const HIDDEN_TYPES = new Set(["worker.position"]);
/** Event ids remembered to drop redeliveries (consumers deduplicate by id). */
const MAX_SEEN = 2000;

/** A readable label of an event type in the current language (the type itself if unknown). */
export function typeLabel(type) {
  return has(`event.${type}`) ? t(`event.${type}`) : type;
}

function severity(envelope) {
  const data = envelope.data ?? {};
  switch (envelope.type) {
    case "alert.raised":
      return data.level === "critical" ? "critical" : data.level === "warning" ? "warning" : "info";
    case "worker.left_grid":
    case "worker.offline":
    case "case.due_soon":
      return "warning";
    case "case.overdue":
    case "camera.offline":
      return "critical";
    case "camera.alarm":
      return data.level === "critical" ? "critical" : "warning";
    case "worker.entered_grid":
    case "worker.online":
      return "ok";
    default:
      return "info";
  }
}

function action(name) {
  return has(`action.${name}`) ? t(`action.${name}`) : String(name ?? "");
}

/** The row's text: who or what the event is about, from its data (the row's second line
 * names the org node: the grid, for worker events). */
function summary(envelope, names) {
  const data = envelope.data ?? {};
  switch (envelope.type) {
    case "message.posted":
      return data.author
        ? t("feed.message", { author: data.author, text: data.text ?? "" })
        : String(data.text ?? "");
    case "alert.raised": {
      const level = has(`alert.${data.level}`) ? t(`alert.${data.level}`) : data.level;
      return `[${level}] ${data.title ?? ""}`;
    }
    case "announcement.published":
      return String(data.title ?? "");
    case "directory.user_changed":
      return `${data.user_id ?? ""} ${action(data.action)}`;
    case "directory.org_changed":
      return `${names.org(data.path ?? "")} ${action(data.action)}`;
    case "worker.left_grid":
    case "worker.entered_grid":
    case "worker.online":
      return names.worker(data.worker_id);
    case "worker.offline": {
      const reason = has(`offline.${data.reason}`)
        ? t("feed.reason", { reason: t(`offline.${data.reason}`) })
        : "";
      return `${names.worker(data.worker_id)}${reason}`;
    }
    case "camera.online":
    case "camera.offline":
      return data.reason ? `${data.name} (${data.reason})` : String(data.name ?? "");
    case "camera.alarm":
      return `[${data.kind}] ${data.camera_id}${data.description ? ` ${data.description}` : ""}`;
    default:
      if (envelope.type.startsWith("case.") && data.number) {
        // A case event: its number and title say which case at a glance.
        return `${data.number} ${data.title ?? ""}`;
      }
      return envelope.subject ?? "";
  }
}

/**
 * The feed panel. `elements`: {list, empty, count}; `names`: {worker(id), org(path)} for
 * readable rows.
 */
export function createFeed(elements, names) {
  const entries = []; // newest first: {envelope, row}
  const seen = new Set();

  function render(envelope) {
    const row = el("li", `feed-row sev-${severity(envelope)}`);
    row.dataset.type = envelope.type;
    if (envelope.id) row.dataset.eventId = envelope.id;
    const time = el("time", "feed-time", formatTime(envelope.time));
    if (envelope.time) time.dateTime = envelope.time;
    const body = el("div", "feed-body");
    body.append(
      el("span", "feed-label", typeLabel(envelope.type)),
      el("span", "feed-text", summary(envelope, names)),
    );
    const where = el("div", "feed-org", names.org(envelope.org ?? ""));
    row.append(time, body, where);
    return row;
  }

  function updateCount() {
    elements.count.textContent = entries.length ? t("feed.count", { count: entries.length }) : "";
    elements.empty.hidden = entries.length > 0;
  }

  /** Add a publication (an event envelope); returns false when it is not shown. */
  function add(envelope) {
    if (!envelope || typeof envelope.type !== "string" || HIDDEN_TYPES.has(envelope.type))
      return false;
    if (envelope.id) {
      if (seen.has(envelope.id)) return false;
      seen.add(envelope.id);
      if (seen.size > MAX_SEEN) seen.delete(seen.values().next().value);
    }
    const row = render(envelope);
    entries.unshift({ envelope, row });
    elements.list.prepend(row);
    while (entries.length > MAX_ROWS) entries.pop().row.remove();
    updateCount();
    return true;
  }

  /** Re-render every row (language switch, or names that became known). */
  function refresh() {
    for (const entry of entries) {
      const row = render(entry.envelope);
      entry.row.replaceWith(row);
      entry.row = row;
    }
    updateCount();
  }

  const stopLang = onLangChange(refresh);
  updateCount();
  return { add, refresh, destroy: stopLang };
}
