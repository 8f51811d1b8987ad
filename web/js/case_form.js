// The report form (上报案件): title, description, category (the tree), priority and the org
// node the case belongs to (the user's subtree). Any signed-in user may report; the hub routes
// the case to the centre of that place.

import { caseApi, errorText } from "./case_api.js";
import { PRIORITIES, priorityLabel } from "./case_rules.js";
import { el, i18nText, labelled } from "./format.js";
import { onLangChange, t } from "./i18n.js";


function named(tag, name) {
  const node = el(tag);
  node.name = name;
  return node;
}

/**
 * The form in `overlay` (a hidden element). Options: {token, claims, orgName(path),
 * categories() (the panel's category index), onReported(kase)}.
 */
export function createReportForm(overlay, { token, claims, orgName, categories, onReported }) {
  const api = caseApi(token);
  let nodes = null; // the org nodes the user may report in (loaded on first open)

  const form = el("form", "case-dialog case-report-form");
  form.setAttribute("role", "dialog");
  form.setAttribute("aria-modal", "true");
  form.setAttribute("aria-labelledby", "case-report-title");
  form.noValidate = true;
  const heading = i18nText("h2", "case-detail-title", "cases.report");
  heading.id = "case-report-title";
  const title = named("input", "title");
  title.maxLength = 200;
  title.autocomplete = "off";
  const description = named("textarea", "description");
  description.rows = 4;
  description.maxLength = 8000;
  const category = named("select", "category");
  const priority = named("select", "priority");
  const org = named("select", "org");
  const error = el("p", "case-action-error");
  error.setAttribute("role", "alert");
  error.hidden = true;
  const submit = i18nText("button", "primary case-submit", "case.report.submit");
  submit.type = "submit";
  const cancel = i18nText("button", "ghost case-cancel", "case.cancel");
  cancel.type = "button";
  const buttons = el("div", "case-form-buttons");
  buttons.append(cancel, submit);
  const body = el("div", "case-dialog-body");
  body.append(
    labelled("case.field.title", title),
    labelled("case.field.description", description),
    labelled("case.field.category", category),
    labelled("case.field.priority", priority),
    labelled("case.field.org", org),
    error,
    buttons,
  );
  const head = el("header", "case-dialog-head");
  head.append(heading);
  form.append(head, body);
  overlay.replaceChildren(form);

  function fillCategories() {
    const index = categories();
    const chosen = category.value;
    const groups = index.roots.map((root) => {
      if (!root.children?.length) {
        const option = el("option", "", index.nameOf(root));
        option.value = root.code;
        return option;
      }
      const group = el("optgroup");
      group.label = index.nameOf(root);
      for (const child of root.children) {
        const option = el("option", "", index.nameOf(child));
        option.value = child.code;
        group.append(option);
      }
      return group;
    });
    category.replaceChildren(...groups);
    if (chosen) category.value = chosen;
  }

  function fillPriorities() {
    const chosen = priority.value || "normal";
    priority.replaceChildren(
      ...PRIORITIES.map((value) => {
        const option = el("option", "", priorityLabel(value));
        option.value = value;
        return option;
      }),
    );
    priority.value = chosen;
  }

  function fillOrgs() {
    const chosen = org.value || claims.org;
    const list = nodes ?? [{ path: claims.org, name: orgName(claims.org) }];
    org.replaceChildren(
      ...list.map((node) => {
        const depth = node.path.split(".").length - claims.org.split(".").length;
        const option = el("option", "", `${"　".repeat(depth)}${node.name} · ${node.path}`);
        option.value = node.path;
        return option;
      }),
    );
    org.value = chosen;
  }

  function fill() {
    fillCategories();
    fillPriorities();
    fillOrgs();
  }

  async function loadOrgs() {
    if (nodes) return;
    try {
      nodes = (await api.orgNodes()).items ?? null;
      fillOrgs();
    } catch {
      nodes = null; // the user's own node stays the only choice
    }
  }

  function close() {
    overlay.hidden = true;
    error.hidden = true;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      const kase = await api.report({
        title: title.value,
        description: description.value,
        category: category.value,
        priority: priority.value,
        org: org.value,
      });
      form.reset();
      close();
      onReported(kase);
    } catch (err) {
      error.textContent = t("case.refused", { message: errorText(err) });
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  cancel.addEventListener("click", close);
  // Properties, not listeners: the overlay outlives a session, its handlers must not pile up.
  overlay.onclick = (event) => {
    if (event.target === overlay) close();
  };
  overlay.onkeydown = (event) => {
    if (event.key === "Escape") close();
  };
  const stopLang = onLangChange(fill);

  return {
    open() {
      fill();
      overlay.hidden = false;
      title.focus();
      loadOrgs();
    },
    close,
    destroy() {
      stopLang();
      close();
    },
  };
}
