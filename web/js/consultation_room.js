// A consultation room the user is in (远程会商): a tile per occupied receive slot (the remote
// participant's or camera's video and audio, its name, muted badges, the active speaker
// outlined), the user's own preview, their mic/camera/leave buttons and, for the host, the
// participant controls (mute, remove, hand over), cameras and "end". Room events come on
// room:<id>; the room is subscribed before joining so no slot change falls in between.

import { errorCode } from "./consultation_api.js";
import { MediaUnsupported, capture, createRoomConnection } from "./consultation_media.js";
import { el } from "./format.js";
import { onLangChange, t } from "./i18n.js";

const CAMERA_PREFIX = "camera:";
/** Participant states that hold a place in the room (listed in the side bar). */
const LISTED = new Set(["invited", "accepted", "joined", "left"]);

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
  controls.append(micButton, camButton, leaveButton, endButton, backButton);
  head.append(title, status, controls);
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
  container.replaceChildren(root);

  const isHost = () => host === me;
  const open = () => state === "joining" || state === "joined";

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
      tile.node.classList.toggle("speaking", speaker === slot.source);
      tile.node.classList.toggle("video-muted", Boolean(participant?.muted_video));
      tile.label.textContent = names(slot.source);
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

  function renderPeople() {
    const rows = [...participants.values()].filter((p) => LISTED.has(p.state));
    people.replaceChildren(
      ...rows.map((participant) => {
        const pid = participant.participant_id;
        const item = el("li", `consult-person state-${participant.state}`);
        item.dataset.participantId = pid;
        item.classList.toggle("speaking", speaker === pid);
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
      kind: pid.startsWith(CAMERA_PREFIX) ? "camera" : "user",
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
        setParticipant(pid, { state: data.reason === "removed" ? "removed" : "left" });
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
