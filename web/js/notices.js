// Notice pop-ups (通知公告), bottom-right: one card per unread notice, newest on top, each with
// a "标记已读" button that calls the hub's rpc notice.read over the live connection. New
// notices arrive as notice.new on the user's personal channel; what arrived while the console
// was away comes from rpc notice.unread after each connect (the database, not history).

import { el, formatTime } from "./format.js";
import { t } from "./i18n.js";

/** Cards shown at once; the rest are counted under them. */
const MAX_CARDS = 5;

/**
 * Create the pop-up stack in `container`. `rpc(method, data)` returns a Promise of the
 * reply's data.
 */
export function createNoticePopups(container, { rpc }) {
  const notices = new Map(); // id -> summary (notice.new data or a notice.unread item)
  let hiddenCount = 0; // unread notices the hub has that the list did not return

  function summaryFromEvent(data) {
    return { ...data, id: data.notice_id };
  }

  function card(notice) {
    const node = el("section", `notice-card level-${notice.level}`);
    node.dataset.noticeId = notice.id;
    node.setAttribute("role", "alertdialog");
    const head = el("header", "notice-head");
    if (notice.level === "urgent") head.append(el("span", "notice-urgent", t("notice.level.urgent")));
    const kindKey = `notice.kind.${notice.kind}`;
    head.append(el("span", `notice-kind kind-${notice.kind}`, t(kindKey)));
    node.append(head);
    node.append(el("h3", "notice-title", notice.title));
    const from = t("notice.from", {
      sender: notice.sender_name || notice.sender_id,
      time: formatTime(notice.created_at),
    });
    node.append(el("p", "notice-from", from));
    if (notice.excerpt) node.append(el("p", "notice-excerpt", notice.excerpt));
    if (notice.attachment_count) {
      node.append(el("p", "notice-attachments", t("notice.attachments", { count: notice.attachment_count })));
    }
    const error = el("p", "notice-error");
    error.hidden = true;
    const button = el("button", "notice-read", t("notice.mark_read"));
    button.type = "button";
    button.addEventListener("click", () => markRead(notice.id, button, error));
    node.append(error, button);
    return node;
  }

  async function markRead(id, button, error) {
    button.disabled = true;
    try {
      await rpc("notice.read", { notice_id: id });
      notices.delete(id);
      render();
      if (hiddenCount > 0) await loadUnread();
    } catch (err) {
      button.disabled = false;
      error.textContent = t("notice.read_failed", { message: err?.message ?? String(err) });
      error.hidden = false;
    }
  }

  async function loadUnread() {
    const reply = await rpc("notice.unread", {});
    const items = reply?.notices ?? [];
    for (const item of items) notices.set(item.id, item);
    hiddenCount = Math.max(0, (reply?.unread ?? 0) - items.length);
    render();
  }

  function render() {
    const newest = [...notices.values()].sort((a, b) => (a.id < b.id ? 1 : -1));
    const shown = newest.slice(0, MAX_CARDS).map(card);
    const more = newest.length - shown.length + hiddenCount;
    if (more > 0) shown.push(el("p", "notice-more", t("notice.more", { count: more })));
    container.replaceChildren(...shown);
    container.hidden = shown.length === 0;
    document.body.dataset.unreadNotices = String(newest.length + hiddenCount);
  }

  return {
    /** A live envelope on the personal channel. */
    apply(envelope) {
      if (envelope?.type !== "notice.new" || !envelope.data?.notice_id) return;
      notices.set(envelope.data.notice_id, summaryFromEvent(envelope.data));
      render();
    },
    /** After each connect: the unread list from the hub (deduplicated with live ones). */
    loadUnread,
    refresh: render,
    destroy() {
      notices.clear();
      container.replaceChildren();
      container.hidden = true;
    },
  };
}
