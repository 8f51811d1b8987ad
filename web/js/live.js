// The live connection: the official centrifuge-js SDK (web/vendor/centrifuge.js, loaded as a
// classic script, so it is globalThis.Centrifuge) talking to the hub's WebSocket endpoint.

const ENDPOINT = "/connection/websocket";

/** Server disconnect codes that mean "sign in again" (see README, WebSocket). */
const TOKEN_EXPIRED = 3005;
const INVALID_TOKEN = 3500;
/** The SDK's own "unauthorized" disconnect code (disconnectedCodes.unauthorized). */
const UNAUTHORIZED = 1;
/** The protocol's "token expired" error code. */
const ERROR_TOKEN_EXPIRED = 109;

/** The WebSocket URL of the hub that served this page. */
export function endpoint() {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${window.location.host}${ENDPOINT}`;
}

/**
 * Connect with `token` and subscribe to `channel` (with recovery).
 *
 * Callbacks: onState(state) with "connecting" | "connected" | "reconnecting" |
 * "disconnected"; onSubscription(state, ctx) with "subscribing" | "subscribed" |
 * "unsubscribed"; onPublication(envelope); onAuthFailure("expired" | "invalid");
 * onSubscribeError(message); onConnected() after each (re)connect; onPersonal(envelope) for
 * publications on the user's server-side channel user:<id>. The returned object's
 * rpc(method, data) resolves to the reply's data.
 */
export function connectLive({
  token,
  channel,
  onState,
  onSubscription,
  onPublication,
  onAuthFailure,
  onSubscribeError,
  onConnected = () => {},
  onPersonal = () => {},
}) {
  const Centrifuge = globalThis.Centrifuge;
  if (!Centrifuge) throw new Error("centrifuge-js is not loaded");
  let everConnected = false;
  let lastErrorCode = null;

  const client = new Centrifuge(endpoint(), {
    token,
    name: "grid-hub-console",
    // Only called when the hub said the token expired: there is no silent renewal in the
    // console, so the SDK stops with "unauthorized" and the user signs in again.
    getToken: () => Promise.reject(new Centrifuge.UnauthorizedError("token expired")),
  });

  client.on("connecting", () => onState(everConnected ? "reconnecting" : "connecting"));
  client.on("connected", () => {
    everConnected = true;
    lastErrorCode = null;
    onState("connected");
    onConnected();
  });
  // Publications of server-side subscriptions (the personal channel user:<id>).
  client.on("publication", (ctx) => {
    if (ctx.data && typeof ctx.data === "object") onPersonal(ctx.data);
  });
  client.on("error", (ctx) => {
    lastErrorCode = ctx.error?.code ?? null;
  });
  client.on("disconnected", (ctx) => {
    if (ctx.code === UNAUTHORIZED) {
      // Reached after the hub answered "token expired" and getToken declined.
      onAuthFailure(lastErrorCode === ERROR_TOKEN_EXPIRED || everConnected ? "expired" : "invalid");
    } else if (ctx.code === TOKEN_EXPIRED) {
      onAuthFailure("expired");
    } else if (ctx.code === INVALID_TOKEN) {
      onAuthFailure("invalid");
    } else {
      onState("disconnected");
    }
  });

  const sub = client.newSubscription(channel, { recoverable: true, positioned: true });
  sub.on("subscribing", (ctx) => onSubscription("subscribing", ctx));
  sub.on("subscribed", (ctx) => onSubscription("subscribed", ctx));
  sub.on("unsubscribed", (ctx) => onSubscription("unsubscribed", ctx));
  sub.on("error", (ctx) => onSubscribeError(ctx.error?.message ?? String(ctx.error?.code)));
  sub.on("publication", (ctx) => {
    if (ctx.data && typeof ctx.data === "object") onPublication(ctx.data);
  });
  sub.subscribe();
  client.connect();

  return {
    async rpc(method, data) {
      const result = await client.rpc(method, data);
      return result.data;
    },
    /**
     * Subscribe to one more channel (e.g. a consultation room's room:<id>). Resolves once
     * subscribed; the returned function unsubscribes. onPublication(envelope) per event.
     */
    subscribe(extra, onPublication) {
      const existing = client.getSubscription(extra);
      if (existing) client.removeSubscription(existing);
      const room = client.newSubscription(extra);
      room.on("publication", (ctx) => {
        if (ctx.data && typeof ctx.data === "object") onPublication(ctx.data);
      });
      const stop = () => {
        room.removeAllListeners?.();
        client.removeSubscription(room);
      };
      room.subscribe();
      return room.ready().then(
        () => stop,
        (err) => {
          stop();
          throw err;
        },
      );
    },
    close() {
      client.removeAllListeners?.();
      client.disconnect();
    },
  };
}
