// What the console needs to know of the closed loop (七步闭环): the states, which actions the
// signed-in user may take in a case's current state (the same table as hub/cases/lifecycle.py;
// the server stays the judge and its refusals are shown), and the category tree's names.

import { getLang, t } from "./i18n.js";

export const STATES = [
  "reported",
  "registered",
  "rejected",
  "assigned",
  "handling",
  "fed_back",
  "closed",
  "evaluated",
];
export const OPEN = new Set(["reported", "registered", "assigned", "handling", "fed_back"]);
export const PRIORITIES = ["normal", "urgent", "emergency"];
const CENTRE_ROLES = ["dispatcher", "leader"];

// action → [states it is allowed in, who may take it] (lifecycle.py TRANSITIONS and WHO)
const TABLE = {
  register: [["reported"], "centre"],
  reject: [["reported"], "centre"],
  assign: [["registered", "assigned"], "centre"],
  start: [["assigned"], "assignee"],
  feed_back: [["handling"], "assignee"],
  close: [["fed_back"], "centre"],
  return: [["fed_back"], "centre"],
  evaluate: [["closed"], "centre_or_reporter"],
  escalate: [["reported", "registered"], "centre"],
  supervise: [[...OPEN], "higher_centre"],
};
export const ACTIONS = Object.keys(TABLE);
/** Actions the server refuses without a note saying why. */
export const NEEDS_REASON = new Set(["reject", "return", "escalate", "supervise"]);

/** True when org path `outer` is `inner` or one of its ancestors. */
export function orgContains(outer, inner) {
  return inner === outer || inner.startsWith(`${outer}.`);
}

function may(who, kase, claims) {
  const staff = claims.roles.some((role) => CENTRE_ROLES.includes(role));
  const atCentre = staff && claims.org === kase.tier_org;
  switch (who) {
    case "assignee":
      return kase.assignee === claims.user;
    case "centre":
      return atCentre;
    case "centre_or_reporter":
      return atCentre || (kase.reporter_kind === "user" && kase.reporter_id === claims.user);
    case "higher_centre":
      return staff && claims.org !== kase.tier_org && orgContains(claims.org, kase.tier_org);
    default:
      return false;
  }
}

/** The actions `claims` ({user, org, roles}) may take on `kase` now, in loop order. */
export function allowedActions(kase, claims) {
  return ACTIONS.filter((action) => {
    const [states, who] = TABLE[action];
    if (!states.includes(kase.state) || !may(who, kase, claims)) return false;
    return action !== "escalate" || kase.tier_org.includes(".");
  });
}

/** The alert level of a case: "overdue" (red), "due_soon" (yellow) or "". */
export function alertOf(kase) {
  if (!OPEN.has(kase.state)) return "";
  if (kase.overdue) return "overdue";
  return kase.due_soon ? "due_soon" : "";
}

/** The category tree, with names in the current language. */
export function categoryIndex(tree) {
  const byCode = new Map();
  const walk = (nodes) => {
    for (const node of nodes ?? []) {
      byCode.set(node.code, node);
      walk(node.children);
    }
  };
  walk(tree?.categories);
  const nameOf = (node) => (getLang() === "en" && node.name_en ? node.name_en : node.name);
  return {
    roots: tree?.categories ?? [],
    nameOf,
    /** "Root / leaf" name of a code (the code itself when unknown). */
    label(code) {
      const node = byCode.get(code);
      if (!node) return code ?? "";
      const root = byCode.get(code.split(".")[0]);
      return root && root !== node ? `${nameOf(root)} / ${nameOf(node)}` : nameOf(node);
    },
  };
}

export const stateLabel = (state) => t(`case.state.${state}`);
export const priorityLabel = (priority) => t(`case.priority.${priority}`);
export const actionLabel = (action) => t(`case.action.${action}`);
