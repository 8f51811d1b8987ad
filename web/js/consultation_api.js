// The hub's consultation API (远程会商) as the console uses it: REST for the rooms, their
// invitations and host controls (hub/api/consultations.py); joining and leaving the media go
// over the live connection's rpc (hub/consultations/rpc.py) because the join reply carries
// the receive slots as well as the SDP answer.

import { getJson, postJson, request } from "./api.js";

const BASE = "/api/v1/consultations";
const room = (id) => `${BASE}/${encodeURIComponent(id)}`;
const participant = (id, pid) => `${room(id)}/participants/${encodeURIComponent(pid)}`;

/** The consultation calls signed with `token`; `rpc(method, data)` is the live connection's. */
export function consultationApi(token, rpc) {
  const del = (path) => request(path, token, { method: "DELETE", raw: true });
  return {
    /** The caller's rooms, newest first ("open" or "ended"). */
    async mine(status = "open") {
      return (await getJson(BASE, token, { status })).items ?? [];
    },
    /** One room with its participants and recordings. */
    get: (id) => getJson(room(id), token),
    /** Open a room: {title, case_id?, invite_users, invite_org_nodes, sms_offline}. */
    create: (spec) => postJson(BASE, token, spec),
    invite: (id, spec) => postJson(`${room(id)}/invitations`, token, spec),
    accept: (id) => postJson(`${room(id)}/accept`, token, {}),
    decline: (id) => postJson(`${room(id)}/decline`, token, {}),
    mute: (id, pid, kind, muted) => postJson(`${participant(id, pid)}/mute`, token, { kind, muted }),
    remove: (id, pid) => del(participant(id, pid)),
    handOver: (id, userId) => postJson(`${room(id)}/host`, token, { user_id: userId }),
    end: (id) => postJson(`${room(id)}/end`, token, {}),
    addCamera: (id, cameraId) => postJson(`${room(id)}/cameras`, token, { camera_id: cameraId }),
    removeCamera: (id, cameraId) => del(`${room(id)}/cameras/${encodeURIComponent(cameraId)}`),
    /** Call a video network terminal (视联网终端) into the room: a SIP URI or a bare number. */
    callTerminal: (id, uri, name = "") => postJson(`${room(id)}/terminals`, token, { uri, name }),
    /** What terminal `pid` is sent: a participant's video, or null for the active speaker. */
    showToTerminal: (id, pid, source) => postJson(`${participant(id, pid)}/show`, token, { source }),
    /** The configured terminals a host may call: {enabled, items: [{uri, name, org}]}. */
    terminals: () => getJson("/api/v1/videonet/terminals", token),
    /** The users of the caller's org subtree (for names and the invitee picker). */
    async users() {
      return (await getJson("/api/v1/users", token, { limit: 500, active: true })).items ?? [];
    },
    /** The org nodes of the caller's subtree. */
    async orgNodes() {
      const answer = await getJson("/api/v1/org/nodes", token);
      return Array.isArray(answer) ? answer : (answer.items ?? []);
    },
    /** Join the room's media: {participant_id, answer, slots, participants, host}. */
    join: (id, offer) => rpc("consultation.join", { consultation_id: id, offer }),
    leave: (id) => rpc("consultation.leave", { consultation_id: id }),
  };
}

/** The hub's error code of a failed call (REST ApiError or rpc error "code: message"). */
export function errorCode(err) {
  if (err?.code && typeof err.code === "string") return err.code;
  const message = String(err?.message ?? err ?? "");
  const match = /^([a-z_]+\.[a-z_.]+):/.exec(message);
  return match ? match[1] : null;
}
