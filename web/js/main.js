// The console's entry point: sign-in, then the map and the live feed of the user's org node.

import { ApiError, getJson } from "./api.js";
import { createCaseAlerts } from "./case_alerts.js";
import { createCaseDetail } from "./case_detail.js";
import { createReportForm } from "./case_form.js";
import { createCaseMarkers } from "./case_markers.js";
import { createCaseStats, maySeeStats } from "./case_stats.js";
import {
  clearToken,
  decodeToken,
  isExpired,
  storeToken,
  storedToken,
  takeTokenFromUrl,
} from "./auth.js";
import { createCameras } from "./cameras.js";
import { createCasesPanel } from "./cases.js";
import { createConsultations, mayHost } from "./consultations.js";
import { createFeed } from "./feed.js";
import { el } from "./format.js";
import { applyStatic, getLang, onLangChange, setLang, t } from "./i18n.js";
import { connectLive } from "./live.js";
import { createWorkerMap } from "./map.js";
import { createNoticePopups } from "./notices.js";
import { createTrackPlayback } from "./track.js";
import { createVideoDevices, maySeeVideoDevices } from "./video_devices.js";

const $ = (id) => document.getElementById(id);

/** The channel of an org node (hub/auth/channels.py org_channel). */
const orgChannel = (path) => `org:${path}`;

let session = null; // {token, claims, live, map, feed}
let signinMessage = null; // dictionary key shown on the sign-in form
let banner = null; // [key, vars] of the banner under the top bar

function setBanner(key, vars = {}) {
  banner = key ? [key, vars] : null;
  $("banner").textContent = key ? t(key, vars) : "";
  $("banner").hidden = !key;
}

function showSignIn(messageKey = null) {
  signinMessage = messageKey;
  document.body.dataset.view = "signin";
  $("signin-view").hidden = false;
  $("console-view").hidden = true;
  $("stats-view").hidden = true;
  $("session").hidden = true;
  $("signin-error").textContent = messageKey ? t(messageKey) : "";
  $("signin-error").hidden = !messageKey;
  setBanner(null);
  $("token-input").focus();
}

function stopSession() {
  if (!session) return;
  session.live?.close();
  session.map?.destroy();
  session.feed?.destroy();
  session.notices?.destroy();
  session.cases?.destroy();
  session.caseDetail?.destroy();
  session.caseForm?.destroy();
  session.caseAlerts?.destroy();
  session.caseMarkers?.destroy();
  session.cameras?.destroy();
  session.videoDevices?.destroy();
  session.track?.destroy();
  session.stats?.destroy();
  session.consultations?.destroy();
  session.stopped = true;
  showTab("console");
  $("views").hidden = true;
  session = null;
}

/** Sign out because the hub refused the token; back to the sign-in form with the reason. */
function authFailed(reason) {
  stopSession();
  clearToken();
  showSignIn(reason === "expired" ? "auth.expired" : "auth.invalid");
}

/** Show the console ("console"), the statistics ("stats") or the consultations page. */
function showTab(tab) {
  document.body.dataset.tab = tab;
  $("console-view").hidden = tab !== "console";
  $("stats-view").hidden = tab !== "stats";
  $("consultations-view").hidden = tab !== "consultations";
  for (const button of $("views").querySelectorAll("[data-tab]")) {
    button.setAttribute("aria-pressed", String(button.dataset.tab === tab));
  }
  if (tab === "stats") session?.stats?.show();
}

/** Show the workers ("workers") or the cameras ("cameras") beside the map. */
function showPane(pane) {
  $("side-pane").dataset.pane = pane;
  for (const button of $("side-pane").querySelectorAll(".pane-tab")) {
    button.setAttribute("aria-selected", String(button.dataset.pane === pane));
  }
}

function apiFailed(err, messageKey, render) {
  if (err instanceof ApiError && err.unauthorized) {
    authFailed(err.expired ? "expired" : "invalid");
    return;
  }
  let message = err.message;
  if (err instanceof ApiError && err.status === 403) message = t("auth.forbidden");
  else if (err instanceof ApiError && err.status === 0) message = t(err.code);
  render(messageKey, { message });
}

function renderUser(claims, profile) {
  $("user-name").textContent = profile?.name ?? claims.user;
  $("user-name").title = profile?.title ?? "";
  $("user-id").textContent = profile?.name ? claims.user : "";
  const orgName = session?.map?.orgName(claims.org) ?? claims.org;
  $("user-org").textContent = orgName === claims.org ? claims.org : `${orgName} · ${claims.org}`;
  $("user-roles").replaceChildren(
    ...claims.roles.map((role) => el("span", "role", t(`role.${role}`))),
  );
}

function setConnection(state) {
  document.body.dataset.connection = state;
  $("conn").dataset.state = state;
  $("conn-text").textContent = t(`conn.${state}`);
  if (state === "reconnecting") setBanner("conn.lost");
  else if (state === "disconnected") setBanner("conn.closed");
  else if (banner?.[0] === "conn.lost" || banner?.[0] === "conn.closed") setBanner(null);
}

function setSubscription(state) {
  document.body.dataset.subscription = state;
  $("feed-channel").dataset.state = state;
  $("feed-channel").title = t(`sub.${state}`);
}

async function loadGrids(current) {
  try {
    const grids = await getJson("/api/v1/grids", current.token);
    if (current.stopped) return;
    current.map.setGrids(grids);
    renderUser(current.claims, current.profile);
    current.feed.refresh();
    current.cases.refresh();
    current.cameras.refresh();
    current.consultations.refresh();
  } catch (err) {
    if (!current.stopped) apiFailed(err, "map.load_failed", current.map.showMessage);
  }
}

async function loadPositions(current) {
  try {
    const positions = await getJson("/api/v1/workers/positions", current.token);
    if (current.stopped) return;
    current.map.setPositions(positions.items ?? []);
    current.feed.refresh();
  } catch (err) {
    if (!current.stopped) apiFailed(err, "map.positions_failed", setBanner);
  }
}

async function loadProfile(current) {
  try {
    current.profile = await getJson(
      `/api/v1/users/${encodeURIComponent(current.claims.user)}`,
      current.token,
    );
    if (!current.stopped) renderUser(current.claims, current.profile);
  } catch {
    // A token's user need not be in the directory: the token's claims are shown instead.
  }
}

/** The cases panel, the detail view, the report form and the alert toasts. */
function startCases(current) {
  const { token, claims } = current;
  const orgName = (path) => current.map?.orgName(path) ?? path;
  const categories = () => current.cases.categories();
  const open = (id) => current.caseDetail.open(id);
  current.cases = createCasesPanel(
    {
      filters: $("case-filters"),
      tbody: $("cases").tBodies[0],
      empty: $("cases-empty"),
      count: $("cases-count"),
      more: $("cases-more"),
      error: $("cases-error"),
    },
    { token, claims, orgName, onOpen: open, onCase: (kase) => current.caseDetail.changed(kase.id) },
  );
  current.caseDetail = createCaseDetail($("case-detail"), {
    token,
    claims,
    orgName,
    categories,
    onCase: (kase) => current.cases.update(kase),
    onConsult: mayHost(claims)
      ? (kase) => {
          current.caseDetail.close();
          showTab("consultations");
          current.consultations.startFor({ case_id: kase.id, title: `${kase.number} ${kase.title}` });
        }
      : null,
  });
  current.caseForm = createReportForm($("case-report"), {
    token,
    claims,
    orgName,
    categories,
    onReported: (kase) => {
      current.cases.update(kase);
      open(kase.id);
    },
  });
  current.caseAlerts = createCaseAlerts($("case-alerts"), { onOpen: open });
  current.caseMarkers = createCaseMarkers(current.map.overlay, { token, onOpen: open });
  current.cases.onChange((kase, id) =>
    kase ? current.caseMarkers.apply(kase) : current.caseMarkers.remove(id),
  );
  if (maySeeStats(claims)) {
    current.stats = createCaseStats(
      {
        root: $("stats-panel"),
        form: $("stats-filters"),
        scope: $("stats-scope"),
        error: $("stats-error"),
        kpis: $("stats-kpis"),
        stateChart: $("stats-state-chart"),
        categoryChart: $("stats-category-chart"),
        ranking: $("stats-ranking"),
        rankingEmpty: $("stats-ranking-empty"),
      },
      { token, claims, orgName, categories },
    );
  }
}

/** Remote video consultations (远程会商): every user may be invited, so the tab is always on. */
function startConsultations(current) {
  current.consultations = createConsultations(
    {
      list: $("consult-list"),
      empty: $("consult-empty"),
      count: $("consult-count"),
      error: $("consult-error"),
      createButton: $("consult-create-open"),
      room: $("consult-room"),
      dialog: $("consult-create"),
      invites: $("consult-invites"),
    },
    {
      token: current.token,
      claims: current.claims,
      rpc: (method, data) => current.live.rpc(method, data),
      subscribe: (channel, onEnvelope) =>
        current.live.subscribe(channel, (envelope) => {
          if (!current.stopped) onEnvelope(envelope);
        }),
      orgName: (path) => current.map?.orgName(path) ?? path,
      profileName: () => current.profile?.name ?? null,
      onShow: () => showTab("consultations"),
      onAuthFailure: (err) => authFailed(err.expired ? "expired" : "invalid"),
    },
  );
  $("tab-stats").hidden = !current.stats;
  $("views").hidden = false;
}

function applyCaseEvent(current, envelope) {
  current.cases.apply(envelope);
  current.caseAlerts.apply(envelope);
}

function start(token) {
  let claims;
  try {
    claims = decodeToken(token);
  } catch {
    clearToken();
    showSignIn("signin.malformed");
    return;
  }
  if (isExpired(claims)) {
    clearToken();
    showSignIn("auth.expired");
    return;
  }
  stopSession();
  document.body.dataset.view = "console";
  $("signin-view").hidden = true;
  $("console-view").hidden = false;
  $("session").hidden = false;
  $("feed").replaceChildren();
  $("feed-channel").textContent = orgChannel(claims.org);

  const current = { token, claims, profile: null, stopped: false };
  session = current;
  current.map = createWorkerMap(
    {
      svg: $("map"),
      wrap: $("map-wrap"),
      tooltip: $("map-tooltip"),
      message: $("map-message"),
      tbody: $("workers").tBodies[0],
      count: $("workers-count"),
      empty: $("workers-empty"),
    },
    {
      lookupWorker: (id) => getJson(`/api/v1/workers/${encodeURIComponent(id)}`, token),
      onNamesChanged: () => current.feed?.refresh(),
      onWorkerPick: (id) => current.track?.open(id),
    },
  );
  current.track = createTrackPlayback(
    {
      bar: $("track-bar"),
      open: $("track-open"),
      close: $("track-close"),
      form: $("track-form"),
      worker: $("track-worker"),
      from: $("track-from"),
      to: $("track-to"),
      play: $("track-play"),
      speed: $("track-speed"),
      slider: $("track-slider"),
      time: $("track-time"),
      summary: $("track-summary"),
      message: $("track-message"),
    },
    {
      token,
      overlay: current.map.overlay,
      workers: () => current.map.workerList(),
      onAuthFailure: (err) => authFailed(err.expired ? "expired" : "invalid"),
    },
  );
  current.feed = createFeed(
    { list: $("feed"), empty: $("feed-empty"), count: $("feed-count") },
    { worker: (id) => current.map.workerName(id), org: (path) => current.map.orgName(path) },
  );
  current.notices = createNoticePopups($("notices"), {
    rpc: (method, data) => current.live.rpc(method, data),
  });
  startCases(current);
  startConsultations(current);
  current.cameras = createCameras(
    {
      tbody: $("cameras").tBodies[0],
      count: $("cameras-count"),
      empty: $("cameras-empty"),
      error: $("cameras-error"),
      players: $("camera-players"),
      alerts: $("camera-alerts"),
    },
    {
      token,
      overlay: current.map.overlay,
      orgName: (path) => current.map.orgName(path),
      onAuthFailure: (err) => authFailed(err.expired ? "expired" : "invalid"),
    },
  );
  current.videoDevices = createVideoDevices(
    {
      section: $("video-devices"),
      tbody: $("video-devices-table").tBodies[0],
      count: $("video-devices-count"),
      error: $("video-devices-error"),
    },
    {
      token,
      allowed: maySeeVideoDevices(claims),
      onAuthFailure: (err) => authFailed(err.expired ? "expired" : "invalid"),
    },
  );
  renderUser(claims, null);
  setConnection("connecting");
  setSubscription("subscribing");
  loadGrids(current);
  loadProfile(current);

  current.live = connectLive({
    token,
    channel: orgChannel(claims.org),
    onState: (state) => {
      if (!current.stopped) setConnection(state);
    },
    onSubscription: (state, ctx) => {
      if (current.stopped) return;
      setSubscription(state);
      // Positions are loaded once subscribed, so nothing falls between the two; again
      // after any reconnect whose missed publications could not all be recovered.
      if (state === "subscribed" && !(ctx.wasRecovering && ctx.recovered)) {
        loadPositions(current);
        current.cases.reload();
        current.caseMarkers.reload();
        current.cameras.reload();
        current.videoDevices.reload();
        current.consultations.reload();
      }
    },
    onPublication: (envelope) => {
      if (current.stopped) return;
      current.map.apply(envelope);
      current.feed.add(envelope);
      if (current.cameras.apply(envelope)) current.videoDevices.cameraEvent(envelope.type);
      applyCaseEvent(current, envelope);
    },
    onAuthFailure: (reason) => {
      if (!current.stopped) authFailed(reason);
    },
    onSubscribeError: (message) => {
      if (!current.stopped) setBanner("sub.failed", { message });
    },
    onConnected: () => {
      if (current.stopped) return;
      current.notices.loadUnread().catch((err) => {
        if (!current.stopped) setBanner("notice.read_failed", { message: err?.message ?? err });
      });
    },
    onPersonal: (envelope) => {
      if (current.stopped) return;
      current.notices.apply(envelope);
      current.consultations.apply(envelope);
      applyCaseEvent(current, envelope);
    },
  });
}

function boot() {
  applyStatic();
  $("lang-toggle").addEventListener("click", () => setLang(getLang() === "zh" ? "en" : "zh"));
  onLangChange(() => {
    if (signinMessage && !$("signin-view").hidden) $("signin-error").textContent = t(signinMessage);
    if (banner) setBanner(...banner);
    if (session) {
      setConnection(document.body.dataset.connection);
      setSubscription(document.body.dataset.subscription);
      renderUser(session.claims, session.profile);
      session.notices?.refresh();
    }
  });
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token-input").value.trim();
    if (!token) {
      showSignIn("signin.empty");
      return;
    }
    try {
      decodeToken(token);
    } catch {
      showSignIn("signin.malformed");
      return;
    }
    storeToken(token);
    $("token-input").value = "";
    start(token);
  });
  $("case-report-open").addEventListener("click", () => session?.caseForm.open());
  for (const button of $("views").querySelectorAll("[data-tab]")) {
    button.addEventListener("click", () => showTab(button.dataset.tab));
  }
  for (const button of $("side-pane").querySelectorAll(".pane-tab")) {
    button.addEventListener("click", () => showPane(button.dataset.pane));
  }
  $("signout").addEventListener("click", () => {
    stopSession();
    clearToken();
    showSignIn();
  });

  takeTokenFromUrl();
  const token = storedToken();
  if (token) start(token);
  else showSignIn();
}

boot();
