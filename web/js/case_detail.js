// The case detail view: the case's fields, its timeline (全程留痕: action, actor, time, note),
// its attachments (images as thumbnails), and the actions the signed-in user may take now,
// each with the inputs it needs. The server judges every action; a refusal shows its message.

import { caseApi, errorText } from "./case_api.js";
import { createActionForm } from "./case_actions.js";
import {
  actionLabel,
  alertOf,
  allowedActions,
  priorityLabel,
  stateLabel,
} from "./case_rules.js";
import { el, formatTime } from "./format.js";
import { onLangChange, t } from "./i18n.js";

/**
 * The detail overlay in `overlay` (a hidden element). Options: {token, claims, orgName(path),
 * categories() (the panel's category index), onCase(kase) after an action succeeded,
 * onConsult(kase) to start a video consultation about the case (none: no button)}.
 */
export function createCaseDetail(
  overlay,
  { token, claims, orgName, categories, onCase, onConsult = null },
) {
  const api = caseApi(token);
  const images = new Map(); // attachment id -> object URL
  let current = null; // the case detail shown
  let openId = null;
  let loadToken = 0;

  const dialog = el("div", "case-dialog");
  dialog.setAttribute("role", "dialog");
  dialog.setAttribute("aria-modal", "true");
  dialog.setAttribute("aria-labelledby", "case-detail-title");
  const head = el("header", "case-dialog-head");
  const title = el("h2", "case-detail-title");
  title.id = "case-detail-title";
  const state = el("span", "badge");
  const closeButton = el("button", "ghost case-close");
  closeButton.type = "button";
  // Opens the consultation dialog about this case (hidden for who may not host one).
  const consultButton = el("button", "ghost small case-consult");
  consultButton.type = "button";
  consultButton.addEventListener("click", () => current && onConsult?.(current));
  head.append(title, state, consultButton, closeButton);
  const error = el("p", "case-error");
  error.setAttribute("role", "alert");
  error.hidden = true;
  const fields = el("dl", "case-fields");
  const actionsHead = el("h3");
  const actions = el("div", "case-actions");
  const form = createActionForm({
    api,
    onDone: async (kase) => {
      onCase(kase);
      await load(kase.id);
    },
  });
  const timelineHead = el("h3");
  const timeline = el("ol", "case-timeline");
  const filesHead = el("h3");
  const files = el("ul", "case-attachments");
  const body = el("div", "case-dialog-body");
  body.append(error, fields, actionsHead, actions, form.node, timelineHead, timeline);
  body.append(filesHead, files);
  dialog.append(head, body);
  overlay.replaceChildren(dialog);
  // Properties, not listeners: the overlay outlives a session, its handlers must not pile up.
  overlay.onclick = (event) => {
    if (event.target === overlay) close();
  };
  overlay.onkeydown = (event) => {
    if (event.key === "Escape") close();
  };
  closeButton.addEventListener("click", close);

  function field(label, value, className = "") {
    const wrap = el("div", className);
    wrap.append(el("dt", "", label), el("dd", "", value ?? "—"));
    return wrap;
  }

  function renderFields(kase) {
    const alert = alertOf(kase);
    const deadline = field(t("case.field.deadline"), kase.due_at ? formatTime(kase.due_at) : "—");
    deadline.classList.add("case-field-deadline");
    if (alert) {
      deadline.classList.add(`alert-${alert}`);
      deadline.lastChild.append(el("span", `alert-badge alert-${alert}`, t(`case.alert.${alert}`)));
    }
    const onTime = kase.on_time === null ? "—" : t(kase.on_time ? "case.yes" : "case.no");
    fields.replaceChildren(
      field(t("case.field.number"), kase.number),
      field(t("case.field.category"), categories().label(kase.category)),
      field(t("case.field.priority"), priorityLabel(kase.priority)),
      field(t("case.field.state"), stateLabel(kase.state), "case-field-state"),
      field(t("case.field.org"), `${orgName(kase.org)} · ${kase.org}`),
      field(t("case.field.centre"), `${orgName(kase.tier_org)} · ${kase.tier_org}`),
      field(t("case.field.reporter"), kase.reporter_name || kase.reporter_id),
      field(t("case.field.assignee"), kase.assignee_name || kase.assignee, "case-field-assignee"),
      field(t("case.field.created"), formatTime(kase.created_at)),
      field(t("case.field.registered"), kase.registered_at && formatTime(kase.registered_at)),
      deadline,
      field(t("case.field.closed"), kase.closed_at && formatTime(kase.closed_at)),
      field(t("case.field.on_time"), onTime),
      field(t("case.field.satisfaction"), kase.satisfaction),
      field(t("case.field.address"), kase.location?.address),
      field(t("case.field.description"), kase.description || "—", "case-field-wide"),
    );
  }

  function renderActions(kase) {
    const allowed = allowedActions(kase, claims);
    actions.replaceChildren(
      ...allowed.map((action) => {
        const button = el("button", `case-action action-${action}`, actionLabel(action));
        button.type = "button";
        button.dataset.action = action;
        button.addEventListener("click", () => form.open(kase, action));
        return button;
      }),
    );
    if (!allowed.length) actions.append(el("p", "hint", t("case.no_actions")));
    form.keepIf(kase, allowed);
  }

  function renderTimeline(kase) {
    timeline.replaceChildren(
      ...(kase.timeline ?? []).map((entry) => {
        const item = el("li", `case-entry entry-${entry.action}`);
        item.dataset.action = entry.action;
        const time = el("time", "entry-time", formatTime(entry.at));
        time.dateTime = entry.at;
        const line = el("div", "entry-line");
        line.append(
          el("strong", "entry-action", actionLabel(entry.action)),
          el("span", "entry-actor", entry.actor_name || entry.actor_id),
        );
        if (entry.from_state && entry.from_state !== entry.to_state) {
          const move = `${stateLabel(entry.from_state)} → ${stateLabel(entry.to_state)}`;
          line.append(el("span", "entry-states", move));
        }
        item.append(time, line);
        if (entry.note) item.append(el("p", "entry-note", entry.note));
        const extra = [];
        if (entry.details?.satisfaction) {
          extra.push(t("case.entry.satisfaction", { score: entry.details.satisfaction }));
        }
        if (entry.details?.attachments?.length) {
          extra.push(t("case.entry.attachments", { count: entry.details.attachments.length }));
        }
        if (extra.length) item.append(el("p", "entry-extra", extra.join(" · ")));
        return item;
      }),
    );
  }

  function renderFiles(kase) {
    const list = kase.attachments ?? [];
    files.replaceChildren(
      ...list.map((file) => {
        const item = el("li", "case-file");
        item.dataset.attachmentId = file.id;
        const link = el("a", "case-file-link", file.filename);
        link.href = images.get(file.id) ?? "#";
        link.target = "_blank";
        link.rel = "noopener";
        link.addEventListener("click", (event) => download(event, file, link));
        if (file.content_type.startsWith("image/")) {
          const img = el("img", "case-thumb");
          img.alt = file.filename;
          item.append(img);
          thumbnail(file, img, link);
        }
        item.append(link, el("span", "case-file-size", `${Math.ceil(file.size / 1024)} KB`));
        return item;
      }),
    );
    if (!list.length) files.append(el("li", "hint", t("case.no_attachments")));
  }

  async function thumbnail(file, img, link) {
    try {
      if (!images.has(file.id)) images.set(file.id, await api.attachmentUrl(file.url));
      img.src = images.get(file.id);
      link.href = images.get(file.id);
    } catch {
      img.remove(); // the link still downloads it on demand
    }
  }

  async function download(event, file, link) {
    if (images.has(file.id)) return; // the object URL is already the link's target
    event.preventDefault();
    try {
      const url = await api.attachmentUrl(file.url);
      images.set(file.id, url);
      link.href = url;
      const save = el("a");
      save.href = url;
      save.download = file.filename;
      save.click();
    } catch (err) {
      showError(err);
    }
  }

  function showError(err) {
    error.textContent = err ? t("case.load_failed", { message: errorText(err) }) : "";
    error.hidden = !err;
  }

  function render() {
    closeButton.textContent = t("case.close");
    consultButton.textContent = t("case.consult");
    consultButton.hidden = !current || !onConsult;
    actionsHead.textContent = t("case.section.actions");
    timelineHead.textContent = t("case.section.timeline");
    filesHead.textContent = t("case.section.attachments");
    if (!current) return;
    const kase = current;
    title.textContent = `${kase.number} ${kase.title}`;
    state.className = `badge state-${kase.state}`;
    state.textContent = stateLabel(kase.state);
    dialog.dataset.caseId = kase.id;
    dialog.dataset.state = kase.state;
    renderFields(kase);
    renderActions(kase);
    renderTimeline(kase);
    renderFiles(kase);
  }

  async function load(id) {
    const mine = ++loadToken;
    try {
      const kase = await api.get(id);
      if (mine !== loadToken || openId !== id) return;
      current = kase;
      showError(null);
      render();
    } catch (err) {
      if (mine === loadToken && openId === id) showError(err);
    }
  }

  function revokeImages() {
    for (const url of images.values()) URL.revokeObjectURL(url);
    images.clear();
  }

  function close() {
    openId = null;
    current = null;
    loadToken += 1;
    overlay.hidden = true;
    form.close();
    revokeImages();
  }

  const stopLang = onLangChange(render);
  render();

  return {
    /** Show case `id` (fetched fresh). */
    open(id) {
      if (openId !== id) {
        close();
        openId = id;
        fields.replaceChildren();
        timeline.replaceChildren();
        files.replaceChildren();
        actions.replaceChildren();
        title.textContent = "…";
        state.textContent = "";
      }
      overlay.hidden = false;
      closeButton.focus();
      return load(id);
    },
    /** The case changed (a live event): reload it if it is the one shown. */
    changed(id) {
      if (openId === id) load(id);
    },
    get openId() {
      return openId;
    },
    close,
    destroy() {
      stopLang();
      close();
    },
  };
}
