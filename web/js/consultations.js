// Remote video consultations in the console (远程会商): the user's rooms, the dialog that
// opens one (title, optional case, invitees by user and by org node, SMS to offline ones),
// invitation cards (accept joins at once, decline), and the room view
// (consultation_room.js). Invitations come on the personal channel user:<id>.

import { consultationApi, errorCode } from "./consultation_api.js";
import { createRoomView } from "./consultation_room.js";
import { cameraApi } from "./camera_api.js";
import { el, formatTime, labelled } from "./format.js";
import { onLangChange, t } from "./i18n.js";

/** Roles that may open and host a room (hub/consultations/service.py HOST_ROLES). */
const HOST_ROLES = ["dispatcher", "leader", "admin"];
/** Invitation cards shown at once (older ones drop off). */
const MAX_INVITES = 4;
const JOINABLE = new Set(["accepted", "joined", "left"]);

/** True when `claims` may open and host a room. */
export function mayHost(claims) {
  return claims.roles.some((role) => HOST_ROLES.includes(role));
}

/**
 * The consultations. `elements`: {list, empty, count, error, createButton, room, dialog,
 * invites}; options: {token, claims, rpc(method, data), subscribe(channel, onEnvelope),
 * orgName(path), profileName() (the signed-in user's name), onShow() (bring the view
 * forward), onAuthFailure(err)}.
 */
export function createConsultations(elements, options) {
  const { token, claims, rpc, subscribe, orgName, profileName, onShow, onAuthFailure } = options;
  const api = consultationApi(token, rpc);
  const cameras = cameraApi(token);
  const names = new Map(); // user id -> name
  const cameraNames = new Map(); // camera id -> name
  let rooms = [];
  let invites = []; // consultation.invited data, newest first
  let users = null; // the subtree's users (for the picker), loaded once
  let nodes = null;
  let stopped = false;
  let loadError = null;

  function participantName(pid) {
    if (pid === claims.user) return profileName() ?? names.get(pid) ?? pid;
    if (pid?.startsWith("camera:")) {
      const id = pid.slice("camera:".length);
      return cameraNames.get(id) ?? id;
    }
    return names.get(pid) ?? pid;
  }

  function apiFailed(err, key = "consult.error.action") {
    if (err?.unauthorized) {
      onAuthFailure(err);
      return;
    }
    loadError = [key, { message: errorCode(err) ?? err?.message ?? String(err) }];
    renderList();
  }

  const room = createRoomView(elements.room, {
    api,
    claims,
    names: participantName,
    cameras: async () => {
      const items = await cameras.list();
      for (const camera of items) cameraNames.set(camera.id, camera.name);
      return items;
    },
    subscribe,
    onClose: () => {
      elements.room.hidden = true;
      reload();
    },
    onChange: () => reload(),
  });
  elements.room.hidden = true;

  // -- the list -----------------------------------------------------------------------------

  function renderList() {
    elements.error.textContent = loadError ? t(...loadError) : "";
    elements.error.hidden = !loadError;
    elements.count.textContent = rooms.length ? String(rooms.length) : "";
    elements.empty.textContent = t("consult.list.empty");
    elements.empty.hidden = rooms.length > 0;
    elements.createButton.hidden = !mayHost(claims);
    elements.createButton.textContent = t("consult.create");
    elements.list.replaceChildren(
      ...rooms.map((item) => {
        const row = el("li", `consult-item state-${item.my_state ?? "none"}`);
        row.dataset.consultationId = item.id;
        const head = el("div", "consult-item-head");
        head.append(el("strong", "consult-item-title", item.title));
        if (item.case_id) head.append(el("span", "badge consult-case", t("consult.case_badge")));
        const hostMark = item.host_id === claims.user ? t("consult.you_host") : participantName(item.host_id);
        const meta = el(
          "p",
          "consult-item-meta",
          `${t("consult.host")}: ${hostMark} · ${formatTime(item.created_at)} · ${t(`consult.state.${item.my_state ?? "invited"}`)}`,
        );
        const buttons = el("div", "consult-item-buttons");
        if (item.my_state === "invited" || item.my_state === "declined") {
          buttons.append(actionButton("primary small consult-accept", "consult.accept", () => acceptAndJoin(item)));
        }
        if (item.my_state === "invited") {
          buttons.append(actionButton("ghost small consult-decline", "consult.decline", () => decline(item.id)));
        }
        if (item.host_id === claims.user || JOINABLE.has(item.my_state)) {
          const join = actionButton("primary small consult-join", "consult.join", () => join(item));
          join.hidden = room.id === item.id; // already in it
          buttons.append(join);
        }
        row.append(head, meta, buttons);
        return row;
      }),
    );
  }

  function actionButton(className, key, onClick) {
    const node = el("button", className, t(key));
    node.type = "button";
    node.addEventListener("click", onClick);
    return node;
  }

  async function reload() {
    try {
      const items = await api.mine("open");
      if (stopped) return;
      rooms = items;
      loadError = null;
      renderList();
    } catch (err) {
      if (!stopped) apiFailed(err, "consult.error.load");
    }
  }

  async function loadDirectory() {
    if (users !== null) return;
    users = [];
    nodes = [];
    try {
      [users, nodes] = await Promise.all([api.users(), api.orgNodes()]);
    } catch (err) {
      if (!stopped) apiFailed(err, "consult.error.load");
    }
    for (const user of users) names.set(user.id, user.name);
    if (!stopped) {
      renderList();
      room.refresh();
    }
  }

  // -- joining, answering -----------------------------------------------------------------

  function join(item) {
    onShow();
    elements.room.hidden = false;
    room.join(item).then(renderList);
    renderList();
  }

  async function acceptAndJoin(item) {
    dropInvite(item.id);
    try {
      await api.accept(item.id);
    } catch (err) {
      apiFailed(err);
      return;
    }
    join({ id: item.id, title: item.title, host_id: item.host_id ?? item.host, case_id: item.case_id });
  }

  async function decline(id) {
    dropInvite(id);
    try {
      await api.decline(id);
    } catch (err) {
      apiFailed(err);
    }
    reload();
  }

  // -- invitation cards ---------------------------------------------------------------------

  function dropInvite(id) {
    invites = invites.filter((invite) => invite.consultation_id !== id);
    renderInvites();
  }

  function renderInvites() {
    elements.invites.replaceChildren(
      ...invites.map((invite) => {
        const card = el("section", "case-toast consult-invite");
        card.setAttribute("role", "alert");
        card.dataset.consultationId = invite.consultation_id;
        card.append(el("h3", "case-toast-title", t("consult.invite.title")));
        card.append(el("p", "consult-invite-room", invite.title));
        card.append(
          el("p", "consult-invite-host", t("consult.invite.from", { name: invite.host_name || participantName(invite.host) })),
        );
        const row = el("div", "case-toast-buttons");
        row.append(
          actionButton("primary small consult-accept", "consult.accept", () =>
            acceptAndJoin({ id: invite.consultation_id, title: invite.title, host_id: invite.host, case_id: invite.case_id }),
          ),
          actionButton("ghost small consult-decline", "consult.decline", () => decline(invite.consultation_id)),
        );
        card.append(row);
        return card;
      }),
    );
    elements.invites.hidden = invites.length === 0;
  }

  // -- the create dialog --------------------------------------------------------------------

  const dialogNode = el("form", "case-dialog consult-create-form");
  dialogNode.setAttribute("role", "dialog");
  dialogNode.setAttribute("aria-modal", "true");
  dialogNode.noValidate = true;
  const dialogHead = el("header", "case-dialog-head");
  const dialogTitle = el("h2");
  const dialogClose = actionButton("ghost case-close", "consult.cancel", closeDialog);
  dialogHead.append(dialogTitle, dialogClose);
  const titleInput = Object.assign(el("input"), { name: "title", maxLength: 200, required: true });
  const caseInput = Object.assign(el("input"), { name: "case_id", maxLength: 26 });
  const userBox = el("div", "consult-pick consult-pick-users");
  const nodeBox = el("div", "consult-pick consult-pick-nodes");
  const smsInput = Object.assign(el("input"), { type: "checkbox", name: "sms_offline" });
  const smsLabel = el("label", "consult-sms");
  const smsText = el("span");
  smsLabel.append(smsInput, " ", smsText);
  const dialogError = el("p", "case-error");
  dialogError.setAttribute("role", "alert");
  dialogError.hidden = true;
  const submit = el("button", "primary consult-create-submit");
  submit.type = "submit";
  const dialogBody = el("div", "case-dialog-body");
  const usersHead = el("h3");
  const nodesHead = el("h3");
  const buttonsRow = el("div", "case-form-buttons");
  buttonsRow.append(submit);
  dialogBody.append(
    labelled("consult.field.title", titleInput),
    labelled("consult.field.case", caseInput),
    usersHead,
    userBox,
    nodesHead,
    nodeBox,
    smsLabel,
    dialogError,
    buttonsRow,
  );
  dialogNode.append(dialogHead, dialogBody);
  elements.dialog.replaceChildren(dialogNode);
  elements.dialog.onclick = (event) => {
    if (event.target === elements.dialog) closeDialog();
  };
  elements.dialog.onkeydown = (event) => {
    if (event.key === "Escape") closeDialog();
  };

  function renderDialog() {
    dialogTitle.textContent = t("consult.create.title");
    dialogClose.textContent = t("consult.cancel");
    usersHead.textContent = t("consult.field.users");
    nodesHead.textContent = t("consult.field.nodes");
    smsText.textContent = t("consult.field.sms");
    submit.textContent = t("consult.create.submit");
    caseInput.placeholder = t("consult.field.case_hint");
    const checked = new Set([...dialogNode.querySelectorAll("input[data-pick]:checked")].map((i) => i.value));
    const pick = (kind, value, label) => {
      const wrap = el("label", "consult-pick-item");
      const box = Object.assign(el("input"), { type: "checkbox", value });
      box.dataset.pick = kind;
      box.checked = checked.has(value);
      wrap.append(box, " ", el("span", "", label));
      return wrap;
    };
    userBox.replaceChildren(
      ...(users ?? [])
        .filter((user) => user.id !== claims.user)
        .map((user) => pick("user", user.id, `${user.name} · ${orgName(user.org)}`)),
    );
    nodeBox.replaceChildren(...(nodes ?? []).map((node) => pick("node", node.path, node.name ?? orgName(node.path))));
  }

  function openDialog(spec = {}) {
    if (!mayHost(claims)) return;
    titleInput.value = spec.title ?? "";
    caseInput.value = spec.case_id ?? "";
    smsInput.checked = false;
    for (const box of dialogNode.querySelectorAll("input[data-pick]")) box.checked = false;
    dialogError.hidden = true;
    elements.dialog.hidden = false;
    renderDialog();
    loadDirectory().then(() => {
      if (!elements.dialog.hidden) renderDialog();
    });
    titleInput.focus();
  }

  function closeDialog() {
    elements.dialog.hidden = true;
  }

  dialogNode.addEventListener("submit", async (event) => {
    event.preventDefault();
    const title = titleInput.value.trim();
    if (!title) {
      dialogError.textContent = t("consult.error.title");
      dialogError.hidden = false;
      return;
    }
    const picked = (kind) =>
      [...dialogNode.querySelectorAll(`input[data-pick="${kind}"]:checked`)].map((box) => box.value);
    const spec = {
      title,
      invite_users: picked("user"),
      invite_org_nodes: picked("node"),
      sms_offline: smsInput.checked,
    };
    const caseId = caseInput.value.trim();
    if (caseId) spec.case_id = caseId;
    submit.disabled = true;
    try {
      const created = await api.create(spec);
      closeDialog();
      rooms = [created, ...rooms.filter((item) => item.id !== created.id)];
      join(created);
    } catch (err) {
      if (err?.unauthorized) onAuthFailure(err);
      dialogError.textContent = t("consult.error.create", { message: errorCode(err) ?? err?.message });
      dialogError.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });

  elements.createButton.addEventListener("click", () => openDialog());

  const stopLang = onLangChange(() => {
    renderList();
    renderInvites();
    if (!elements.dialog.hidden) renderDialog();
  });
  renderList();
  renderInvites();
  loadDirectory();

  return {
    reload,
    /** Open the create dialog about a case ({case_id, title}). */
    startFor: (spec) => openDialog(spec),
    mayHost: () => mayHost(claims),
    /** A live envelope from the personal channel; true when it was an invitation. */
    apply(envelope) {
      if (stopped || envelope?.type !== "consultation.invited") return false;
      const data = envelope.data ?? {};
      if (typeof data.consultation_id !== "string") return false;
      if (data.host && data.host_name) names.set(data.host, data.host_name);
      invites = [data, ...invites.filter((i) => i.consultation_id !== data.consultation_id)].slice(0, MAX_INVITES);
      renderInvites();
      reload();
      return true;
    },
    /** Org names or the user's profile arrived: draw names again. */
    refresh() {
      renderList();
      room.refresh();
    },
    destroy() {
      stopped = true;
      stopLang();
      room.destroy();
      closeDialog();
      invites = [];
      renderInvites();
      elements.list.replaceChildren();
    },
  };
}
