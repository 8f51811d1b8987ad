// A participant's media in a consultation room: ONE RTCPeerConnection to the hub
// (max-bundle), whose offer holds, in order, an audio + video pair that sends the user's
// microphone and camera (sendrecv) and then recvonly pairs up to RECEIVE_SLOTS in all. The hub
// never renegotiates: it says which remote source plays in which pair ("slots": index,
// audio_mid, video_mid, source) and the room view binds each pair's receiver tracks to a tile.
// Video is H.264 constrained baseline (packetization-mode=1), audio Opus (streams/room.py).

/** Audio + video pairs in the offer: the first sends (when there are devices), all receive. */
export const RECEIVE_SLOTS = 8;
/** Longest wait for ICE gathering before the offer goes out with what was gathered. */
const GATHER_TIMEOUT_MS = 5000;
const CAPTURE = { audio: true, video: { width: { ideal: 640 }, height: { ideal: 480 } } };

/** A refusal of the browser itself (no H.264, no WebRTC): `code` is an i18n key. */
export class MediaUnsupported extends Error {
  constructor(code) {
    super(code);
    this.code = code;
  }
}

const mime = (codec) => String(codec.mimeType).toLowerCase();

/** The receiver's H.264 constrained baseline codecs (packetization-mode=1) and rtx. */
export function h264Preferences() {
  const codecs = globalThis.RTCRtpReceiver?.getCapabilities?.("video")?.codecs ?? [];
  const baseline = codecs.filter((codec) => {
    const fmtp = String(codec.sdpFmtpLine ?? "").toLowerCase();
    return (
      mime(codec) === "video/h264" &&
      fmtp.includes("profile-level-id=42e01f") &&
      fmtp.includes("packetization-mode=1")
    );
  });
  if (!baseline.length) return null;
  return [...baseline, ...codecs.filter((codec) => mime(codec) === "video/rtx")];
}

function opusPreferences() {
  const codecs = globalThis.RTCRtpReceiver?.getCapabilities?.("audio")?.codecs ?? [];
  const opus = codecs.filter((codec) => mime(codec) === "audio/opus");
  return opus.length ? opus : null;
}

/**
 * The user's microphone and camera, whichever of them can be had: {stream, audio, video}
 * (null tracks when refused or absent; a participant without devices only receives).
 */
export async function capture() {
  const devices = globalThis.navigator?.mediaDevices;
  if (!devices?.getUserMedia) return { stream: null, audio: null, video: null };
  for (const constraints of [CAPTURE, { audio: true }, { video: CAPTURE.video }]) {
    try {
      const stream = await devices.getUserMedia(constraints);
      return {
        stream,
        audio: stream.getAudioTracks()[0] ?? null,
        video: stream.getVideoTracks()[0] ?? null,
      };
    } catch {
      // Refused or no such device: try with less.
    }
  }
  return { stream: null, audio: null, video: null };
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, GATHER_TIMEOUT_MS);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === "complete") done();
    }
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/**
 * The peer connection of one participant. `local` is capture()'s result; `onState(state)`
 * follows the connection state. join(exchange) sends the offer through `exchange(sdp)`, which
 * resolves to the hub's {answer, ...}; that reply is returned.
 */
export function createRoomConnection(local, { onState = () => {} } = {}) {
  if (!globalThis.RTCPeerConnection) throw new MediaUnsupported("consult.error.no_webrtc");
  const video = h264Preferences();
  if (!video) throw new MediaUnsupported("consult.error.no_h264");
  const audio = opusPreferences();
  const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle", iceServers: [] });
  pc.addEventListener("connectionstatechange", () => onState(pc.connectionState));
  const streams = local.stream ? [local.stream] : [];
  for (let index = 0; index < RECEIVE_SLOTS; index++) {
    const pair = [
      ["audio", index === 0 ? local.audio : null, audio],
      ["video", index === 0 ? local.video : null, video],
    ];
    for (const [kind, track, codecs] of pair) {
      const transceiver = track
        ? pc.addTransceiver(track, { direction: "sendrecv", streams })
        : pc.addTransceiver(kind, { direction: "recvonly" });
      if (codecs && transceiver.setCodecPreferences) transceiver.setCodecPreferences(codecs);
    }
  }

  return {
    pc,
    /** Offer (after ICE gathering), the hub's answer applied; the hub's reply. */
    async join(exchange) {
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      const reply = await exchange(pc.localDescription.sdp);
      await pc.setRemoteDescription({ type: "answer", sdp: reply.answer });
      return reply;
    },
    /** The receiving track of the transceiver with this mid (null when there is none). */
    track(mid) {
      if (mid === null || mid === undefined) return null;
      const transceiver = pc.getTransceivers().find((item) => item.mid === String(mid));
      return transceiver?.receiver.track ?? null;
    },
    close() {
      if (pc.signalingState !== "closed") pc.close();
      onState(pc.connectionState);
    },
  };
}
