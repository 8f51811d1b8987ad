// The form of one case action (立案, 指派, 反馈 …) in the detail view: a note for every action,
// the assignee and deadline to assign (a select of the centre's users when the directory lets
// the user list them, else a text input), the satisfaction to evaluate, files to feed back.

import { errorText } from "./case_api.js";
import { NEEDS_REASON, actionLabel } from "./case_rules.js";
import { el, i18nText, labelled } from "./format.js";
import { t } from "./i18n.js";


/** `api` is caseApi(token); `onDone(kase)` runs after the server accepted the action. */
export function createActionForm({ api, onDone }) {
  const users = new Map(); // org -> Promise of the user list (null when it may not be listed)
  const node = el("form", "case-action-form");
  node.hidden = true;
  node.noValidate = true;
  let kase = null;
  let action = null;

  function usersOf(org) {
    if (!users.has(org)) {
      users.set(
        org,
        api.users(org).then(
          (page) => page.items ?? [],
          () => null,
        ),
      );
    }
    return users.get(org);
  }

  async function assigneeInput() {
    const list = await usersOf(kase.tier_org);
    if (!list) {
      const input = el("input", "case-assignee");
      input.name = "assignee";
      input.autocomplete = "off";
      input.placeholder = t("case.input.assignee_id");
      return input;
    }
    const select = el("select", "case-assignee");
    select.name = "assignee";
    select.append(i18nText("option", "", "case.input.choose"));
    select.firstChild.value = "";
    for (const user of list) {
      const option = el("option", "", `${user.name}（${user.id}）`);
      option.value = user.id;
      select.append(option);
    }
    return select;
  }

  /** Fill the form for `name`; false when another action was chosen meanwhile. */
  async function build(name) {
    const inputs = [];
    if (action === "assign") {
      const assignee = await assigneeInput();
      if (action !== name) return false;
      inputs.push(labelled("case.input.assignee", assignee));
      const deadline = el("input");
      deadline.type = "datetime-local";
      deadline.name = "deadline";
      inputs.push(labelled("case.input.deadline", deadline));
    }
    if (action === "evaluate") {
      const score = el("select");
      score.name = "satisfaction";
      for (let value = 5; value >= 1; value -= 1) {
        const option = el("option", "", t(`case.satisfaction.${value}`));
        option.dataset.i18n = `case.satisfaction.${value}`;
        option.value = String(value);
        score.append(option);
      }
      inputs.push(labelled("case.input.satisfaction", score));
    }
    if (action === "feed_back") {
      const file = el("input");
      file.type = "file";
      file.name = "file";
      file.multiple = true;
      inputs.push(labelled("case.input.files", file));
    }
    const note = el("textarea");
    note.name = "note";
    note.rows = 3;
    note.maxLength = 2000;
    const noteKey = NEEDS_REASON.has(action) ? "case.input.reason" : "case.input.note";
    note.placeholder = t(noteKey);
    note.dataset.i18nPlaceholder = noteKey;
    inputs.push(labelled("case.input.note_label", note));

    const head = el("h4", "case-action-title", actionLabel(action));
    head.dataset.i18n = `case.action.${action}`;
    const error = el("p", "case-action-error");
    error.setAttribute("role", "alert");
    error.hidden = true;
    const submit = i18nText("button", "primary case-submit", "case.submit");
    submit.type = "submit";
    const cancel = i18nText("button", "ghost case-cancel", "case.cancel");
    cancel.type = "button";
    cancel.addEventListener("click", close);
    const buttons = el("div", "case-form-buttons");
    buttons.append(cancel, submit);
    node.replaceChildren(head, ...inputs, error, buttons);
    node.dataset.action = action;
    return true;
  }

  async function submit(event) {
    event.preventDefault();
    const fields = node.elements;
    const button = node.querySelector(".case-submit");
    const error = node.querySelector(".case-action-error");
    const body = { action, note: fields.note.value, if_version: kase.version };
    if (action === "assign") {
      body.assignee = fields.assignee.value.trim();
      if (fields.deadline.value) body.deadline = new Date(fields.deadline.value).toISOString();
    }
    if (action === "evaluate") body.satisfaction = Number(fields.satisfaction.value);
    button.disabled = true;
    error.hidden = true;
    try {
      if (action === "feed_back") {
        const uploaded = [];
        for (const file of fields.file.files) uploaded.push((await api.upload(kase.id, file)).id);
        body.attachments = uploaded;
      }
      const updated = await api.act(kase.id, body);
      close();
      await onDone(updated);
    } catch (err) {
      error.textContent = t("case.refused", { message: errorText(err) });
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  function close() {
    kase = null;
    action = null;
    node.hidden = true;
    node.replaceChildren();
    delete node.dataset.action;
  }

  node.addEventListener("submit", submit);

  return {
    node,
    /** Show the form of `name` for `target` (the case as last fetched). */
    async open(target, name) {
      kase = target;
      action = name;
      if (!(await build(name))) return;
      node.hidden = false;
      node.querySelector("select, input, textarea")?.focus();
    },
    /** After the case was fetched again: keep the form while its action is still allowed. */
    keepIf(target, allowed) {
      if (!action) return;
      if (target.id !== kase.id || !allowed.includes(action)) close();
      else kase = target;
    },
    close,
  };
}
