// A consultation room the user is in (远程会商): a tile per occupied receive slot (the remote
// participant's or camera's video and audio, its name, muted badges, the active speaker
// outlined), the user's own preview, their mic/camera/leave buttons and, for the host, the
// participant controls (mute, remove, hand over), cameras and "end". Room events come on
// room:<id>; the room is subscribed before joining so no slot change falls in between.
// Video network terminals (视联网终端) are participants "terminal:<user@host>": the host calls
// one from a dialog (the configured terminals or a typed SIP URI / number), sees its call state
// live from consultation.terminal_call, hangs it up and picks what it is shown; the header
// shows the room's dial code for a terminal to call in with.

import { errorCode } from "./consultation_api.js";
import { MediaUnsupported, capture, createRoomConnection } from "./consultation_media.js";
import { el, labelled } from "./format.js";
import { has, onLangChange, t } from "./i18n.js";

const CAMERA_PREFIX = "camera:";
const TERMINAL_PREFIX = "terminal:";
/** Participant states that hold a place in the room (listed in the side bar). */
const LISTED = new Set(["invited", "accepted", "joined", "left"]);
/** A terminal stays listed after a failed or ended call, with that call state. */
const TERMINAL_LISTED = new Set([...LISTED, "declined", "removed"]);
/** Roles that may list the video network's terminals (hub/api/videonet.py ROLES). */
const VIDEONET_ROLES = ["dispatcher", "leader", "admin"];
/** A terminal's call state (consultation.terminal_call) → its participant state. */
const CALL_TO_STATE = { calling: "invited", connected: "joined", failed: "declined", ended: "left" };
/** A terminal's participant state → the call state shown. */
const STATE_TO_CALL = {
  invited: "calling",
  accepted: "calling",
  joined: "connected",
  declined: "failed",
  left: "ended",
  removed: "ended",
};

const isTerminal = (pid) => typeof pid === "string" && pid.startsWith(TERMINAL_PREFIX);

/** The participant id the hub gives the terminal at `uri` (hub/consultations/rooms.py). */
export function terminalParticipant(uri) {
  const text = String(uri);
  const address = /^sips?:/i.test(text) ? text.slice(text.indexOf(":") + 1) : text;
  return TERMINAL_PREFIX + address.split(";", 1)[0];
}

/** A terminal's fallback name: the user part of its address ("1001" of terminal:1001@gw). */
function terminalUser(pid) {
  const address = pid.slice(TERMINAL_PREFIX.length);
  return address.split("@", 1)[0] || address;
}

/** A small monitor outline (CSS), the mark of a video network terminal. */
const terminalIcon = () => {
  const icon = el("span", "terminal-icon");
  icon.setAttribute("aria-hidden", "true");
  return icon;
};

const button = (className, onClick) => {
  const node = el("button", className);
  node.type = "button";
  node.addEventListener("click", onClick);
  return node;
};

/**
 * The room view in `container`. Options: {api (consultationApi), claims, names
 * (participantName(pid) → string), cameras() → Promise<[{id, name}]>, subscribe(channel,
 * onEnvelope) → Promise<unsubscribe>, onClose() when the user goes back to the list,
 * onChange() when the room's state changed (the list reloads)}.
 */
export function createRoomView(container, { api, claims, names, cameras, subscribe, onClose, onChange }) {
  const me = claims.user;
  let room = null; // {id, title, case_id, host_id, ...}
  let state = "idle"; // joining | joined | ended | left | removed | failed
  let host = null;
  let participants = new Map(); // pid -> {participant_id, kind, camera_id, state, muted_*}
  let slots = []; // my receive slots [{index, audio_mid, video_mid, source}]
  let speaker = null;
  let conn = null;
  let local = { stream: null, audio: null, video: null };
  let unsubscribe = null;
  let errorKey = null;
  let errorVars = {};
  let cameraList = null;
  let videonet = null; // {enabled, items: [{uri, name, org}]} when the user may call terminals
  let dialCode = null;
  const terminalNames = new Map(); // terminal participant id -> name (from its call events)
  const tiles = new Map(); // slot index -> {node, video, audio, label, badges}

  const root = el("section", "consult-room");
  root.setAttribute("aria-labelledby", "consult-room-title");
  const head = el("header", "panel-head consult-room-head");
  const title = el("h2", "consult-room-title");
  title.id = "consult-room-title";
  const status = el("span", "badge consult-status");
  const controls = el("div", "consult-controls");
  const micButton = button("ghost consult-mic", () => toggleSelf("audio"));
  const camButton = button("ghost consult-cam", () => toggleSelf("video"));
  const leaveButton = button("ghost consult-leave", leave);
  const endButton = button("danger consult-end", end);
  const backButton = button("ghost consult-back", close);
  const callButton = button("ghost consult-call-terminal", openCallDialog);
  controls.append(micButton, camButton, callButton, leaveButton, endButton, backButton);
  const dialBox = el("span", "consult-dial-code");
  const dialLabel = el("span", "consult-dial-label");
  const dialDigits = el("strong", "consult-dial-digits");
  dialBox.append(dialLabel, dialDigits);
  head.append(title, status, dialBox, controls);
  const error = el("p", "case-error consult-error");
  error.setAttribute("role", "alert");
  error.hidden = true;
  const stage = el("div", "consult-stage");
  const grid = el("div", "consult-tiles");
  const emptyStage = el("p", "empty consult-alone");
  const side = el("aside", "consult-side");
  const preview = el("div", "consult-tile consult-preview");
  preview.dataset.source = me;
  const previewVideo = el("video");
  previewVideo.muted = true;
  previewVideo.autoplay = true;
  previewVideo.playsInline = true;
  const previewLabel = el("span", "consult-tile-name");
  const previewBadges = el("span", "consult-badges");
  preview.append(previewVideo, previewLabel, previewBadges);
  const peopleHead = el("h3");
  const people = el("ul", "consult-participants");
  const cameraBox = el("div", "consult-add-camera");
  const cameraSelect = el("select", "consult-camera-select");
  const cameraButton = button("ghost consult-camera-add", addCamera);
  cameraBox.append(cameraSelect, cameraButton);
  side.append(preview, peopleHead, people, cameraBox);
  stage.append(grid, side);
  grid.append(emptyStage);
  root.append(head, error, stage);

  // The "call a terminal" dialog (the host's): the configured terminals, or a typed address.
  const overlay = el("div", "case-overlay consult-terminal-overlay");
  overlay.hidden = true;
  const callForm = el("form", "case-dialog consult-terminal-form");
  callForm.setAttribute("role", "dialog");
  callForm.setAttribute("aria-modal", "true");
  callForm.noValidate = true;
  const callHead = el("header", "case-dialog-head");
  const callTitle = el("h2");
  const callClose = button("ghost case-close", closeCallDialog);
  callHead.append(callTitle, callClose);
  const callNote = el("p", "consult-terminal-note");
  const terminalList = el("ul", "consult-terminal-list");
  const uriInput = Object.assign(el("input"), { name: "uri", maxLength: 200, autocomplete: "off" });
  const nameInput = Object.assign(el("input"), { name: "name", maxLength: 100, autocomplete: "off" });
  const callError = el("p", "case-error consult-terminal-error");
  callError.setAttribute("role", "alert");
  callError.hidden = true;
  const callSubmit = el("button", "primary consult-terminal-submit");
  callSubmit.type = "submit";
  const callButtons = el("div", "case-form-buttons");
  callButtons.append(callSubmit);
  const otherHead = el("h3");
  const listHead = el("h3");
  const callBody = el("div", "case-dialog-body");
  callBody.append(
    callNote,
    listHead,
    terminalList,
    otherHead,
    labelled("consult.terminal.uri", uriInput),
    labelled("consult.terminal.name", nameInput),
    callError,
    callButtons,
  );
  callForm.append(callHead, callBody);
  overlay.append(callForm);
  overlay.addEventListener("click", (event) => {
    if (event.target === overlay) closeCallDialog();
  });
  overlay.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeCallDialog();
  });
  callForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const uri = uriInput.value.trim();
    if (!uri) {
      showCallError("consult.terminal.error.empty");
      return;
    }
    callTerminal(uri, nameInput.value.trim());
  });
  root.append(overlay);
  container.replaceChildren(root);

  const isHost = () => host === me;
  const open = () => state === "joining" || state === "joined";
  const mayCall = () => isHost() && state === "joined" && Boolean(videonet?.enabled);

  /** A participant's name; a terminal's from its call events, the configuration or its address. */
  function nameOf(pid) {
    if (!isTerminal(pid)) return names(pid);
    const configured = (videonet?.items ?? []).find((item) => terminalParticipant(item.uri) === pid);
    return terminalNames.get(pid) || configured?.name || terminalUser(pid);
  }

  /** A terminal's address to call it again: its call events', the configuration's, or its id's. */
  function terminalUri(participant) {
    const pid = participant.participant_id;
    const configured = (videonet?.items ?? []).find((item) => terminalParticipant(item.uri) === pid);
    return participant.uri || configured?.uri || `sip:${pid.slice(TERMINAL_PREFIX.length)}`;
  }

  function showError(key, vars = {}) {
    errorKey = key;
    errorVars = vars;
    error.textContent = key ? t(key, vars) : "";
    error.hidden = !key;
  }

  function failed(err, key = "consult.error.action") {
    const code = err instanceof MediaUnsupported ? err.code : null;
    if (code) showError(code);
    else showError(key, { message: errorCode(err) ?? err?.message ?? String(err) });
  }

  function mutedBadges(node, participant) {
    node.replaceChildren();
    if (participant?.muted_audio) node.append(el("span", "badge consult-muted-audio", t("consult.muted_audio")));
    if (participant?.muted_video) node.append(el("span", "badge consult-muted-video", t("consult.muted_video")));
  }

  // -- tiles ------------------------------------------------------------------------------

  function tileFor(slot) {
    let tile = tiles.get(slot.index);
    if (tile) return tile;
    const node = el("div", "consult-tile");
    node.dataset.slot = String(slot.index);
    const video = el("video");
    video.muted = true; // the sound plays through the audio element
    video.autoplay = true;
    video.playsInline = true;
    const audio = el("audio");
    audio.autoplay = true;
    const label = el("span", "consult-tile-name");
    const badges = el("span", "consult-badges");
    node.append(video, audio, label, badges);
    tile = { node, video, audio, label, badges, videoMid: null, audioMid: null };
    tiles.set(slot.index, tile);
    return tile;
  }

  function bind(tile, slot) {
    if (!conn) return;
    if (tile.videoMid !== slot.video_mid) {
      tile.videoMid = slot.video_mid;
      const track = conn.track(slot.video_mid);
      tile.video.srcObject = track ? new MediaStream([track]) : null;
      tile.video.play?.().catch(() => {});
    }
    if (tile.audioMid !== slot.audio_mid) {
      tile.audioMid = slot.audio_mid;
      const track = conn.track(slot.audio_mid);
      tile.audio.srcObject = track ? new MediaStream([track]) : null;
      tile.audio.play?.().catch(() => {}); // autoplay may wait for a gesture: the video still plays
    }
  }

  function renderTiles() {
    const shown = [];
    for (const slot of slots) {
      const tile = tileFor(slot);
      if (!slot.source || state !== "joined") {
        tile.node.remove();
        continue;
      }
      bind(tile, slot);
      const participant = participants.get(slot.source);
      tile.node.dataset.source = slot.source;
      tile.node.classList.toggle("camera", slot.source.startsWith(CAMERA_PREFIX));
      tile.node.classList.toggle("terminal", isTerminal(slot.source));
      tile.node.classList.toggle("speaking", speaker === slot.source);
      tile.node.classList.toggle("video-muted", Boolean(participant?.muted_video));
      if (isTerminal(slot.source)) tile.label.replaceChildren(terminalIcon(), nameOf(slot.source));
      else tile.label.textContent = names(slot.source);
      mutedBadges(tile.badges, participant);
      shown.push(tile.node);
    }
    emptyStage.textContent = state === "joined" ? t("consult.alone") : "";
    grid.replaceChildren(...shown);
    if (!shown.length) grid.append(emptyStage);
    grid.dataset.count = String(shown.length);
  }

  // -- side bar -----------------------------------------------------------------------------

  function hostControls(participant) {
    const pid = participant.participant_id;
    const row = el("span", "consult-host-controls");
    if (participant.kind === "terminal") return terminalControls(participant, row);
    if (participant.kind === "camera") {
      row.append(
        Object.assign(button("ghost small consult-remove", () => act(() => api.removeCamera(room.id, participant.camera_id))), {
          textContent: t("consult.remove_camera"),
        }),
      );
      return row;
    }
    for (const kind of ["audio", "video"]) {
      const muted = Boolean(participant[`muted_${kind}`]);
      const toggle = button(`ghost small consult-mute-${kind}`, () =>
        act(() => api.mute(room.id, pid, kind, !muted)),
      );
      toggle.textContent = t(`consult.${muted ? "unmute" : "mute"}_${kind}`);
      toggle.setAttribute("aria-pressed", String(muted));
      row.append(toggle);
    }
    if (participant.state === "joined" || participant.state === "accepted") {
      const handOver = button("ghost small consult-make-host", () => act(() => api.handOver(room.id, pid)));
      handOver.textContent = t("consult.make_host");
      row.append(handOver);
    }
    const remove = button("ghost small consult-remove", () => act(() => api.remove(room.id, pid)));
    remove.textContent = t("consult.remove");
    row.append(remove);
    return row;
  }

  /** A terminal's controls: hang up (or cancel the call), what it is shown, call again. */
  function terminalControls(participant, row) {
    const pid = participant.participant_id;
    const call = STATE_TO_CALL[participant.state] ?? "ended";
    if (call === "calling" || call === "connected") {
      const hangUp = button("ghost small consult-hang-up", () => act(() => api.remove(room.id, pid)));
      hangUp.textContent = t("consult.terminal.hang_up");
      row.append(hangUp);
    } else if (videonet?.enabled) {
      const redial = button("ghost small consult-redial", () => callTerminal(terminalUri(participant), nameOf(pid)));
      redial.textContent = t("consult.terminal.redial");
      row.append(redial);
    }
    if (call === "connected") {
      const label = el("label", "consult-terminal-show");
      const select = el("select", "consult-show-select");
      select.append(Object.assign(el("option", "", t("consult.terminal.show_speaker")), { value: "" }));
      for (const other of participants.values()) {
        if (other.participant_id === pid || other.state !== "joined") continue;
        const option = el("option", "", nameOf(other.participant_id));
        option.value = other.participant_id;
        select.append(option);
      }
      const shown = participant.shown ?? "";
      select.value = [...select.options].some((option) => option.value === shown) ? shown : "";
      select.addEventListener("change", () => {
        const source = select.value || null;
        setParticipant(pid, { shown: source ?? "" });
        act(() => api.showToTerminal(room.id, pid, source));
      });
      label.append(el("span", "", t("consult.terminal.show")), select);
      row.append(label);
    }
    return row;
  }

  function renderPeople() {
    const rows = [...participants.values()].filter((p) =>
      (p.kind === "terminal" ? TERMINAL_LISTED : LISTED).has(p.state),
    );
    people.replaceChildren(
      ...rows.map((participant) => {
        const pid = participant.participant_id;
        const item = el("li", `consult-person state-${participant.state}`);
        item.dataset.participantId = pid;
        item.classList.toggle("speaking", speaker === pid);
        if (participant.kind === "terminal") return terminalRow(item, participant);
        const name = el("span", "consult-person-name", names(pid));
        const role = pid === host ? el("span", "badge consult-host", t("consult.host")) : null;
        const stateBadge = el("span", `badge consult-state state-${participant.state}`, t(`consult.state.${participant.state}`));
        const badges = el("span", "consult-badges");
        mutedBadges(badges, participant);
        item.append(name);
        if (role) item.append(role);
        item.append(stateBadge, badges);
        if (isHost() && pid !== me && state === "joined") item.append(hostControls(participant));
        return item;
      }),
    );
  }

  /** A terminal's row: its icon and name, its call state (and why a call failed or ended). */
  function terminalRow(item, participant) {
    const pid = participant.participant_id;
    const call = STATE_TO_CALL[participant.state] ?? "ended";
    item.classList.add("terminal");
    item.dataset.call = call;
    const name = el("span", "consult-person-name");
    name.append(terminalIcon(), nameOf(pid));
    const badge = el("span", `badge consult-call call-${call}`, t(`consult.call.${call}`));
    item.append(name, badge);
    if (participant.call_reason && (call === "failed" || call === "ended")) {
      item.append(el("span", "consult-call-reason", participant.call_reason));
    }
    const badges = el("span", "consult-badges");
    mutedBadges(badges, participant);
    item.append(badges);
    if (isHost() && state === "joined") item.append(hostControls(participant));
    return item;
  }

  async function fillCameras() {
    if (cameraList !== null) return;
    cameraList = [];
    try {
      cameraList = await cameras();
    } catch (err) {
      failed(err);
    }
    renderCameras();
  }

  function renderCameras() {
    cameraBox.hidden = !(isHost() && state === "joined");
    if (cameraBox.hidden) return;
    fillCameras();
    const inRoom = new Set(
      [...participants.values()]
        .filter((p) => p.kind === "camera" && p.state === "joined")
        .map((p) => p.camera_id),
    );
    const selected = cameraSelect.value;
    cameraSelect.replaceChildren(
      el("option", "", t("consult.camera.pick")),
      ...(cameraList ?? [])
        .filter((camera) => !inRoom.has(camera.id))
        .map((camera) => Object.assign(el("option", "", camera.name ?? camera.id), { value: camera.id })),
    );
    cameraSelect.firstChild.value = "";
    cameraSelect.value = selected;
    cameraButton.textContent = t("consult.camera.add");
  }

  // -- the whole view -----------------------------------------------------------------------

  function render() {
    root.dataset.state = state;
    root.dataset.consultationId = room?.id ?? "";
    root.classList.toggle("is-host", isHost());
    title.textContent = room ? room.title : "";
    status.className = `badge consult-status status-${state}`;
    status.textContent = t(`consult.room.${state}`);
    const mine = participants.get(me);
    micButton.textContent = t(mine?.muted_audio || !local.audio ? "consult.mic_off" : "consult.mic_on");
    micButton.setAttribute("aria-pressed", String(Boolean(mine?.muted_audio)));
    micButton.disabled = !local.audio || state !== "joined";
    camButton.textContent = t(mine?.muted_video || !local.video ? "consult.cam_off" : "consult.cam_on");
    camButton.setAttribute("aria-pressed", String(Boolean(mine?.muted_video)));
    camButton.disabled = !local.video || state !== "joined";
    leaveButton.textContent = t("consult.leave");
    leaveButton.hidden = !open();
    endButton.textContent = t("consult.end");
    callButton.textContent = t("consult.terminal.call");
    callButton.hidden = !(isHost() && state === "joined" && videonet !== null);
    callButton.disabled = !videonet?.enabled;
    callButton.title = videonet && !videonet.enabled ? t("consult.terminal.disabled") : "";
    dialBox.hidden = !(open() && dialCode && videonet?.enabled);
    dialLabel.textContent = t("consult.dial_code");
    dialDigits.textContent = dialCode ?? "";
    dialBox.title = t("consult.dial_code.hint");
    endButton.hidden = !(isHost() && open());
    backButton.textContent = t("consult.back");
    backButton.hidden = open();
    previewLabel.textContent = `${names(me)} · ${t("consult.me")}`;
    preview.hidden = !local.video && !local.audio;
    preview.classList.toggle("speaking", speaker === me);
    preview.classList.toggle("video-muted", Boolean(mine?.muted_video));
    mutedBadges(previewBadges, mine);
    peopleHead.textContent = t("consult.participants");
    if (errorKey) showError(errorKey, errorVars);
    renderTiles();
    renderPeople();
    renderCameras();
    if (!overlay.hidden) {
      if (mayCall()) renderCallDialog();
      else closeCallDialog();
    }
  }

  async function act(call) {
    try {
      showError(null);
      await call();
    } catch (err) {
      failed(err);
    }
  }

  function setParticipant(pid, changes) {
    const known = participants.get(pid) ?? {
      participant_id: pid,
      kind: pid.startsWith(CAMERA_PREFIX) ? "camera" : isTerminal(pid) ? "terminal" : "user",
      camera_id: pid.startsWith(CAMERA_PREFIX) ? pid.slice(CAMERA_PREFIX.length) : null,
      muted_audio: false,
      muted_video: false,
    };
    participants.set(pid, { ...known, ...changes });
  }

  function applyLocalMute() {
    const mine = participants.get(me);
    if (local.audio) local.audio.enabled = !mine?.muted_audio;
    if (local.video) local.video.enabled = !mine?.muted_video;
  }

  function teardown(next) {
    state = next;
    conn?.close();
    root.dataset.pcState = conn?.pc.connectionState ?? "none";
    for (const track of local.stream?.getTracks() ?? []) track.stop();
    previewVideo.srcObject = null;
    for (const tile of tiles.values()) {
      tile.video.srcObject = null;
      tile.audio.srcObject = null;
    }
    tiles.clear();
    slots = [];
    unsubscribe?.();
    unsubscribe = null;
    render();
    onChange();
  }

  function onEnvelope(envelope) {
    const data = envelope?.data ?? {};
    if (!room || data.consultation_id !== room.id || !open()) return;
    const pid = data.participant_id;
    switch (envelope.type) {
      case "consultation.participant_invited":
        setParticipant(pid, { state: "invited" });
        break;
      case "consultation.participant_answered":
        setParticipant(pid, { state: data.accepted ? "accepted" : "declined" });
        break;
      case "consultation.participant_joined":
        setParticipant(pid, { state: "joined", kind: data.kind });
        break;
      case "consultation.participant_left":
        setParticipant(pid, { state: data.reason === "removed" ? "removed" : "left", shown: "" });
        if (pid === me && data.reason === "removed") {
          showError("consult.removed");
          teardown("removed");
          return;
        }
        break;
      case "consultation.muted":
        setParticipant(pid, { [`muted_${data.kind}`]: Boolean(data.muted) });
        if (pid === me) applyLocalMute();
        break;
      case "consultation.host_changed":
        host = data.host;
        break;
      case "consultation.camera_added":
        setParticipant(pid, { state: "joined", kind: "camera", camera_id: data.camera_id });
        break;
      case "consultation.camera_removed":
        setParticipant(pid, { state: "removed" });
        break;
      case "consultation.terminal_call": {
        if (!isTerminal(pid)) return;
        if (data.name) terminalNames.set(pid, data.name);
        const changes = { kind: "terminal", call_reason: data.reason || null };
        if (data.uri) changes.uri = data.uri;
        if (CALL_TO_STATE[data.state]) changes.state = CALL_TO_STATE[data.state];
        if (data.state === "calling" || data.state === "connected") changes.shown = "";
        setParticipant(pid, changes);
        break;
      }
      case "consultation.active_speaker":
        speaker = pid ?? null;
        break;
      case "consultation.slots":
        if (Array.isArray(data.slots?.[me])) slots = data.slots[me];
        break;
      case "consultation.ended":
        teardown("ended");
        return;
      default:
        return;
    }
    render();
  }

  async function toggleSelf(kind) {
    const muted = !participants.get(me)?.[`muted_${kind}`];
    setParticipant(me, { [`muted_${kind}`]: muted });
    applyLocalMute();
    render();
    await act(() => api.mute(room.id, me, kind, muted));
  }

  async function leave() {
    if (!room || !open()) return;
    const id = room.id;
    teardown("left");
    await act(() => api.leave(id));
  }

  async function addCamera() {
    const cameraId = cameraSelect.value;
    if (!room || !cameraId) return;
    await act(() => api.addCamera(room.id, cameraId));
  }

  // -- calling terminals ------------------------------------------------------------------

  async function loadVideonet() {
    if (!claims.roles?.some((role) => VIDEONET_ROLES.includes(role))) return;
    try {
      const answer = await api.terminals();
      videonet = { enabled: Boolean(answer?.enabled), items: answer?.items ?? [] };
    } catch (err) {
      if (err?.status !== 403 && err?.status !== 404) failed(err);
      return;
    }
    render();
  }

  function showCallError(key, vars = {}) {
    callError.textContent = key ? t(key, vars) : "";
    callError.hidden = !key;
  }

  function callFailed(err) {
    const code = errorCode(err);
    const key = code && has(`consult.terminal.error.${code}`) ? `consult.terminal.error.${code}` : null;
    showCallError(key ?? "consult.terminal.error.call", { message: code ?? err?.message ?? String(err) });
  }

  function renderCallDialog() {
    callTitle.textContent = t("consult.terminal.title");
    callClose.textContent = t("consult.cancel");
    listHead.textContent = t("consult.terminal.configured");
    otherHead.textContent = t("consult.terminal.other");
    callSubmit.textContent = t("consult.terminal.dial");
    uriInput.placeholder = t("consult.terminal.uri_hint");
    nameInput.placeholder = t("consult.terminal.name_hint");
    const enabled = Boolean(videonet?.enabled);
    callNote.textContent = videonet === null ? t("consult.terminal.loading") : enabled ? "" : t("consult.terminal.disabled");
    callNote.hidden = enabled;
    for (const input of [uriInput, nameInput, callSubmit]) input.disabled = !enabled;
    const items = videonet?.items ?? [];
    terminalList.replaceChildren(
      ...items.map((item) => {
        const pid = terminalParticipant(item.uri);
        const inRoom = ["invited", "accepted", "joined"].includes(participants.get(pid)?.state);
        const row = el("li", "consult-terminal-item");
        row.dataset.uri = item.uri;
        const name = el("span", "consult-terminal-name");
        name.append(terminalIcon(), item.name || terminalUser(pid));
        const dial = button("primary small consult-terminal-dial", () => callTerminal(item.uri, item.name));
        dial.textContent = t(inRoom ? "consult.terminal.in_room" : "consult.terminal.dial");
        dial.disabled = !enabled || inRoom;
        row.append(name, el("span", "consult-terminal-uri", item.uri), dial);
        return row;
      }),
    );
    if (!items.length) terminalList.append(el("li", "empty", t("consult.terminal.none")));
  }

  function openCallDialog() {
    if (!mayCall()) return;
    uriInput.value = "";
    nameInput.value = "";
    showCallError(null);
    overlay.hidden = false;
    renderCallDialog();
    loadVideonet().then(() => {
      if (!overlay.hidden) renderCallDialog();
    });
    uriInput.focus();
  }

  function closeCallDialog() {
    overlay.hidden = true;
  }

  /** Call the terminal at `uri` (a SIP URI or a number) into the room, named `name`. */
  async function callTerminal(uri, name = "") {
    if (!room || !isHost()) return;
    const id = room.id;
    showCallError(null);
    callSubmit.disabled = true;
    try {
      const row = await api.callTerminal(id, uri, name);
      closeCallDialog();
      if (room?.id !== id || !row?.participant_id) return;
      if (name) terminalNames.set(row.participant_id, name);
      // The participant as the hub answered, unless its call events got here first.
      const known = participants.get(row.participant_id);
      const stale = !known || !["invited", "joined"].includes(known.state);
      setParticipant(row.participant_id, { kind: "terminal", uri, ...(stale ? { state: row.state, call_reason: null } : {}) });
      render();
    } catch (err) {
      // In the dialog when it is open, else (calling again from the list) under the header.
      if (overlay.hidden) failed(err, "consult.terminal.error.call");
      else callFailed(err);
    } finally {
      callSubmit.disabled = !videonet?.enabled;
    }
  }

  async function end() {
    if (!room || !isHost()) return;
    await act(() => api.end(room.id));
  }

  function close() {
    if (open()) leave();
    onClose();
  }

  const stopLang = onLangChange(render);

  return {
    get id() {
      return open() ? room?.id : null;
    },
    /** Join room `summary` ({id, title, host_id, ...}): subscribe, capture, offer, answer. */
    async join(summary) {
      if (open()) await leave();
      room = summary;
      host = summary.host_id;
      participants = new Map();
      slots = [];
      speaker = null;
      cameraList = null;
      dialCode = summary.dial_code ?? null;
      terminalNames.clear();
      closeCallDialog();
      state = "joining";
      conn = null;
      showError(null);
      root.dataset.pcState = "new";
      render();
      try {
        const stop = await subscribe(`room:${summary.id}`, onEnvelope);
        if (state !== "joining" || room !== summary) {
          stop();
          return;
        }
        unsubscribe = stop;
        local = await capture();
        if (state !== "joining" || room !== summary) {
          for (const track of local.stream?.getTracks() ?? []) track.stop();
          return;
        }
        previewVideo.srcObject = local.stream;
        if (!local.audio && !local.video) showError("consult.no_devices");
        conn = createRoomConnection(local, {
          onState: (pcState) => {
            root.dataset.pcState = pcState;
            if (pcState === "failed" && open()) showError("consult.error.connection");
          },
        });
        const reply = await conn.join((offer) => api.join(summary.id, offer));
        if (state !== "joining" || room !== summary) return;
        host = reply.host ?? host;
        for (const participant of reply.participants ?? []) {
          setParticipant(participant.participant_id, participant);
        }
        slots = Array.isArray(reply.slots) ? reply.slots : [];
        state = "joined";
        applyLocalMute();
        render();
        onChange();
        loadVideonet();
        if (!dialCode) {
          api
            .get(summary.id)
            .then((detail) => {
              if (room !== summary || !detail?.dial_code) return;
              dialCode = detail.dial_code;
              render();
            })
            .catch(() => {}); // the code only helps a terminal dial in: the room works without it
        }
      } catch (err) {
        if (room !== summary) return;
        failed(err, "consult.error.join");
        const keep = errorKey;
        const vars = errorVars;
        teardown("failed");
        showError(keep, vars);
      }
    },
    /** Names arrived (the directory loaded): draw them again. */
    refresh: render,
    destroy() {
      stopLang();
      if (open()) {
        const id = room.id;
        teardown("left");
        api.leave(id).catch(() => {});
      }
    },
  };
}
