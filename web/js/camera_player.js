// One floating live-view window (实时视频): the browser's RTCPeerConnection receives the
// camera over WHEP (recvonly video, offer sent once ICE gathering completed, no trickle), the
// track plays in a muted <video>; snapshot, 30-second recording, and a PTZ button that says
// PTZ is not supported yet. Closing it DELETEs the WHEP session.

import { ApiError } from "./api.js";
import { RECORD_SECONDS } from "./camera_api.js";
import { el, formatTime } from "./format.js";
import { onLangChange, t } from "./i18n.js";

/** Longest wait for ICE gathering before the offer goes out with what it has. */
const ICE_GATHER_TIMEOUT_MS = 3000;
/** The hub's code for a camera whose stream cannot be pulled (streams/manager.py). */
const UNAVAILABLE = "camera.unavailable";

function button(className, key, onClick) {
  const node = el("button", `ghost small ${className}`, t(key));
  node.type = "button";
  node.dataset.i18n = key;
  node.addEventListener("click", onClick);
  return node;
}

/** Resolve once `pc` finished gathering ICE candidates (or the timeout passed). */
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      pc.removeEventListener("icegatheringstatechange", check);
      clearTimeout(timer);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, ICE_GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

function errorText(err) {
  if (err instanceof ApiError && err.status === 0) return t(err.code);
  if (err instanceof ApiError && err.status >= 400) return `${err.message} (${err.status})`;
  return err?.message ?? String(err);
}

/**
 * A player for `camera` ({id, name, org, status, ptz}) in a new window element.
 * `api` is camera_api.js's; `orgName(path)`; `onClose(id)` after it closed;
 * `onAuthFailure(err)` when the hub refused the token.
 */
export function createPlayer(camera, { api, orgName, onClose, onAuthFailure }) {
  const node = el("section", "camera-player");
  node.dataset.cameraId = camera.id;
  node.setAttribute("aria-label", camera.name);
  let pc = null;
  let location = null;
  let closed = false;
  let state = "connecting"; // connecting | playing | offline | error
  let stateMessage = "";
  let cameraStatus = camera.status;
  let snapshotUrl = null;
  let note = null; // [key, vars] under the buttons

  const title = el("h3", "camera-player-title", camera.name);
  const org = el("span", "camera-player-org", orgName(camera.org));
  const badge = el("span", "camera-player-state");
  const close = el("button", "ghost small camera-player-close", "×");
  close.type = "button";
  close.addEventListener("click", () => destroy());
  const head = el("header", "camera-player-head");
  head.append(title, org, badge, close);

  const video = document.createElement("video");
  video.className = "camera-player-video";
  video.autoplay = true;
  video.muted = true;
  video.playsInline = true;
  video.addEventListener("playing", () => setState("playing"));
  const status = el("p", "camera-player-status");
  const shot = el("figure", "camera-player-snapshot");
  shot.hidden = true;
  const stage = el("div", "camera-player-stage");
  stage.append(video, status, shot);

  const snapshotButton = button("camera-snapshot", "player.snapshot", takeSnapshot);
  const recordButton = button("camera-record", "player.record", record);
  const ptz = button("camera-ptz", "player.ptz", () => {});
  ptz.disabled = true;
  ptz.title = t("player.ptz_unsupported");
  ptz.hidden = !camera.ptz;
  const message = el("p", "camera-player-note");
  message.setAttribute("role", "status");
  const tools = el("footer", "camera-player-tools");
  tools.append(snapshotButton, recordButton, ptz, message);
  node.append(head, stage, tools);

  function render() {
    const shown = state === "playing" && cameraStatus === "offline" ? "offline" : state;
    node.dataset.state = shown;
    badge.className = `camera-player-state badge state-${shown}`;
    badge.textContent = t(`player.${shown}`);
    const text =
      shown === "playing"
        ? ""
        : shown === "error"
          ? t("player.error", { message: stateMessage })
          : shown === "offline"
            ? t("player.offline_hint", {
                reason: stateMessage ? t("feed.reason", { reason: stateMessage }) : "",
              })
            : t("player.connecting_hint");
    status.textContent = text;
    status.hidden = !text;
    message.textContent = note ? t(...note) : "";
    message.title = message.textContent;
    ptz.title = t("player.ptz_unsupported");
    close.title = t("player.close");
    close.setAttribute("aria-label", t("player.close"));
    for (const b of [snapshotButton, recordButton, ptz]) b.textContent = t(b.dataset.i18n);
  }

  function setState(next, text = "") {
    if (closed) return;
    state = next;
    stateMessage = text;
    render();
  }

  function setNote(key, vars = {}) {
    note = key ? [key, vars] : null;
    render();
  }

  function failed(err) {
    if (err instanceof ApiError && err.unauthorized) onAuthFailure(err);
    return errorText(err);
  }

  async function connect() {
    if (!globalThis.RTCPeerConnection) {
      setState("error", t("player.no_webrtc"));
      return;
    }
    const connection = new RTCPeerConnection();
    pc = connection;
    const stale = () => closed || pc !== connection;
    connection.addTransceiver("video", { direction: "recvonly" });
    connection.addEventListener("track", (event) => {
      video.srcObject = event.streams[0] ?? new MediaStream([event.track]);
    });
    connection.addEventListener("connectionstatechange", () => {
      if (!stale() && connection.connectionState === "failed") {
        setState("error", t("player.connection_failed"));
      }
    });
    try {
      await connection.setLocalDescription(await connection.createOffer());
      await gathered(connection);
      if (stale()) return;
      const reply = await api.whep(camera.id, connection.localDescription.sdp);
      if (stale()) {
        api.leave(reply.location).catch(() => {});
        return;
      }
      location = reply.location;
      await connection.setRemoteDescription({ type: "answer", sdp: reply.answer });
    } catch (err) {
      if (stale()) return;
      const text = failed(err);
      setState(err instanceof ApiError && err.code === UNAVAILABLE ? "offline" : "error", text);
    }
  }

  /** Start over with a new peer connection (the camera came back after a failure). */
  function reconnect() {
    leave();
    video.srcObject = null;
    setState("connecting");
    connect();
  }

  /** End the WHEP session, then close the peer connection: DELETE first, so the hub
   * hears the viewer leave rather than finding its connection gone. */
  function leave() {
    const session = location;
    const connection = pc;
    location = null;
    pc = null;
    const ended = session ? api.leave(session) : Promise.resolve();
    // Failures are the hub's to clean up: it drops sessions whose connection closed.
    ended.catch(() => {}).finally(() => connection?.close());
  }

  async function takeSnapshot() {
    snapshotButton.disabled = true;
    setNote("player.snapshot_taking");
    try {
      const blob = await api.snapshot(camera.id);
      if (closed) return;
      if (snapshotUrl) URL.revokeObjectURL(snapshotUrl);
      snapshotUrl = URL.createObjectURL(blob);
      const image = el("img", "camera-snapshot-image");
      image.src = snapshotUrl;
      image.alt = t("player.snapshot_alt", { name: camera.name });
      const stamp = new Date();
      const save = el("a", "camera-snapshot-save", t("player.snapshot_save"));
      save.href = snapshotUrl;
      save.download = `${camera.id}-${stamp.toISOString().replace(/[:.]/g, "-")}.jpg`;
      const hide = el("button", "ghost small", "×");
      hide.type = "button";
      hide.addEventListener("click", () => {
        shot.hidden = true;
      });
      const caption = el("figcaption", "", formatTime(stamp));
      caption.append(save, hide);
      shot.replaceChildren(image, caption);
      shot.hidden = false;
      setNote(null);
    } catch (err) {
      if (!closed) setNote("player.snapshot_failed", { message: failed(err) });
    } finally {
      snapshotButton.disabled = false;
    }
  }

  async function record() {
    recordButton.disabled = true;
    setNote("player.recording", { seconds: RECORD_SECONDS });
    try {
      const answer = await api.record(camera.id, RECORD_SECONDS);
      const detail = [answer?.state ?? answer?.status, answer?.id].filter(Boolean).join(" · ");
      if (!closed) setNote("player.record_ok", { seconds: RECORD_SECONDS, detail });
    } catch (err) {
      if (!closed) setNote("player.record_failed", { message: failed(err) });
    } finally {
      recordButton.disabled = false;
    }
  }

  function destroy() {
    if (closed) return;
    closed = true;
    stopLang();
    leave();
    video.srcObject = null;
    if (snapshotUrl) URL.revokeObjectURL(snapshotUrl);
    node.remove();
    onClose(camera.id);
  }

  const stopLang = onLangChange(render);
  render();
  connect();

  return {
    node,
    /** The camera's status changed (camera.online / camera.offline). */
    setStatus(next, reason = "") {
      cameraStatus = next;
      if (next === "offline" && state === "playing") stateMessage = reason;
      render();
      if (next === "online" && (state === "offline" || state === "error")) reconnect();
    },
    /** Draw attention to the window (opened again, or an alarm). */
    flash() {
      node.classList.remove("flash");
      void node.offsetWidth; // restart the animation
      node.classList.add("flash");
    },
    close: destroy,
  };
}
