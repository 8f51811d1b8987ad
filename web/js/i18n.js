// UI text: Simplified Chinese by default, English on request. One dictionary, one module.
// Static text carries data-i18n="key" (textContent), data-i18n-placeholder or
// data-i18n-title; dynamic text calls t() and re-renders on onLangChange.

const STORAGE_KEY = "lang";
const LANGS = ["zh", "en"];

const DICT = {
  zh: {
    "app.title": "网格化综治指挥中心",
    "app.subtitle": "实时枢纽控制台",
    "lang.toggle": "EN",
    "lang.toggle.title": "Switch to English",
    "signin.title": "登录",
    "signin.hint": "粘贴登录令牌（JWT）。运行 make run 时终端会打印控制台地址和管理员令牌。",
    "signin.placeholder": "eyJhbGciOi…",
    "signin.submit": "登录",
    "signin.empty": "请输入令牌",
    "signin.malformed": "无法识别的令牌（应为 JWT）",
    signout: "退出",
    "auth.expired": "登录已过期，请重新登录",
    "auth.invalid": "令牌无效，请重新登录",
    "auth.forbidden": "无权访问该区域的数据",
    "conn.connecting": "连接中…",
    "conn.connected": "已连接",
    "conn.reconnecting": "重连中…",
    "conn.disconnected": "已断开",
    "conn.lost": "实时连接已中断，正在重连…",
    "conn.closed": "实时连接已关闭，请刷新页面",
    "sub.subscribing": "订阅中",
    "sub.subscribed": "已订阅",
    "sub.unsubscribed": "未订阅",
    "sub.failed": "无法订阅实时频道：{message}",
    "user.org": "单位",
    "user.roles": "角色",
    "role.grid_worker": "网格员",
    "role.grid_leader": "网格长",
    "role.dispatcher": "调度员",
    "role.department": "部门联络员",
    "role.leader": "领导",
    "role.admin": "管理员",
    "map.title": "网格员实时位置",
    "map.legend.online": "在线",
    "map.legend.offline": "离线",
    "map.legend.outside": "离开网格",
    "map.loading": "正在加载网格…",
    "map.no_grids": "该区域暂无网格边界数据",
    "map.load_failed": "网格数据加载失败：{message}",
    "map.positions_failed": "网格员位置加载失败：{message}",
    "workers.title": "网格员",
    "workers.count": "{count} 人",
    "workers.empty": "暂无网格员定位",
    "workers.col.name": "姓名",
    "workers.col.grid": "网格",
    "workers.col.fix": "定位时间",
    "workers.col.battery": "电量",
    "workers.col.status": "状态",
    "worker.online": "在线",
    "worker.offline": "离线",
    "worker.outside": "离开网格",
    "worker.unknown": "未知",
    "worker.accuracy": "精度 {m} 米",
    "feed.title": "实时事件",
    "feed.empty": "等待实时事件…",
    "feed.count": "{count} 条",
    "feed.message": "{author}：{text}",
    "feed.reason": "（{reason}）",
    "event.message.posted": "消息",
    "event.alert.raised": "告警",
    "event.announcement.published": "公告",
    "event.directory.user_changed": "人员变更",
    "event.directory.org_changed": "组织变更",
    "event.worker.left_grid": "离开网格",
    "event.worker.entered_grid": "返回网格",
    "event.worker.offline": "离线",
    "event.worker.online": "上线",
    "action.created": "新增",
    "action.updated": "更新",
    "action.deactivated": "停用",
    "alert.info": "提示",
    "alert.warning": "警告",
    "alert.critical": "紧急",
    "offline.silent": "长时间无信号",
    "offline.last_will": "手机已断开",
    "error.network": "网络错误",
    "error.timeout": "请求超时",
    "notice.title": "通知公告",
    "notice.kind.meeting": "会议通知",
    "notice.kind.matter": "事项通知",
    "notice.kind.work_arrangement": "工作安排",
    "notice.kind.red_header": "红头文件",
    "notice.level.urgent": "紧急",
    "notice.from": "{sender} · {time}",
    "notice.attachments": "附件 {count} 个",
    "notice.mark_read": "标记已读",
    "notice.read_failed": "标记已读失败：{message}",
    "notice.more": "另有 {count} 条未读通知",
  },
  en: {
    "app.title": "Grid Governance Command Centre",
    "app.subtitle": "Real-time hub console",
    "lang.toggle": "中文",
    "lang.toggle.title": "切换到中文",
    "signin.title": "Sign in",
    "signin.hint":
      "Paste your sign-in token (JWT). make run prints the console URL and an admin token.",
    "signin.placeholder": "eyJhbGciOi…",
    "signin.submit": "Sign in",
    "signin.empty": "Enter a token",
    "signin.malformed": "That is not a valid token (JWT expected)",
    signout: "Sign out",
    "auth.expired": "Your session has expired: sign in again",
    "auth.invalid": "Invalid token: sign in again",
    "auth.forbidden": "You may not see this area's data",
    "conn.connecting": "Connecting…",
    "conn.connected": "Connected",
    "conn.reconnecting": "Reconnecting…",
    "conn.disconnected": "Disconnected",
    "conn.lost": "Live connection lost, reconnecting…",
    "conn.closed": "Live connection closed: reload the page",
    "sub.subscribing": "subscribing",
    "sub.subscribed": "subscribed",
    "sub.unsubscribed": "not subscribed",
    "sub.failed": "Cannot subscribe to the live channel: {message}",
    "user.org": "Org",
    "user.roles": "Roles",
    "role.grid_worker": "Grid worker",
    "role.grid_leader": "Grid leader",
    "role.dispatcher": "Dispatcher",
    "role.department": "Department liaison",
    "role.leader": "Leader",
    "role.admin": "Admin",
    "map.title": "Grid workers, live",
    "map.legend.online": "Online",
    "map.legend.offline": "Offline",
    "map.legend.outside": "Outside grid",
    "map.loading": "Loading grids…",
    "map.no_grids": "No grid boundaries for this area",
    "map.load_failed": "Could not load the grids: {message}",
    "map.positions_failed": "Could not load worker positions: {message}",
    "workers.title": "Grid workers",
    "workers.count": "{count}",
    "workers.empty": "No worker has reported a position yet",
    "workers.col.name": "Name",
    "workers.col.grid": "Grid",
    "workers.col.fix": "Last fix",
    "workers.col.battery": "Battery",
    "workers.col.status": "Status",
    "worker.online": "Online",
    "worker.offline": "Offline",
    "worker.outside": "Outside grid",
    "worker.unknown": "Unknown",
    "worker.accuracy": "±{m} m",
    "feed.title": "Live events",
    "feed.empty": "Waiting for live events…",
    "feed.count": "{count}",
    "feed.message": "{author}: {text}",
    "feed.reason": " ({reason})",
    "event.message.posted": "Message",
    "event.alert.raised": "Alert",
    "event.announcement.published": "Announcement",
    "event.directory.user_changed": "User changed",
    "event.directory.org_changed": "Org changed",
    "event.worker.left_grid": "Left grid",
    "event.worker.entered_grid": "Back in grid",
    "event.worker.offline": "Offline",
    "event.worker.online": "Online",
    "action.created": "created",
    "action.updated": "updated",
    "action.deactivated": "deactivated",
    "alert.info": "info",
    "alert.warning": "warning",
    "alert.critical": "critical",
    "offline.silent": "silent",
    "offline.last_will": "phone disconnected",
    "error.network": "network error",
    "error.timeout": "request timed out",
    "notice.title": "Notice",
    "notice.kind.meeting": "Meeting notice",
    "notice.kind.matter": "Notice",
    "notice.kind.work_arrangement": "Work arrangement",
    "notice.kind.red_header": "Red-header document",
    "notice.level.urgent": "Urgent",
    "notice.from": "{sender} · {time}",
    "notice.attachments": "{count} attachment(s)",
    "notice.mark_read": "Mark as read",
    "notice.read_failed": "Could not mark as read: {message}",
    "notice.more": "{count} more unread notice(s)",
  },
};

const LOCALES = { zh: "zh-CN", en: "en-GB" };
const listeners = new Set();

function stored() {
  try {
    const value = localStorage.getItem(STORAGE_KEY);
    return LANGS.includes(value) ? value : "zh";
  } catch {
    return "zh"; // storage disabled: default language, not an error
  }
}

let lang = stored();

/** The current language: "zh" or "en". */
export function getLang() {
  return lang;
}

/** The BCP 47 locale of the current language, for dates and numbers. */
export function locale() {
  return LOCALES[lang];
}

/** The text of `key` in the current language, with {name} placeholders filled. */
export function t(key, vars = {}) {
  const text = DICT[lang][key] ?? DICT.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

/** True when the dictionary has `key` (to fall back to raw names, e.g. unknown event types). */
export function has(key) {
  return key in DICT.zh;
}

/** Fill every element under `root` that names a dictionary key. */
export function applyStatic(root = document) {
  document.documentElement.lang = LOCALES[lang];
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
}

/** Switch language, remember it, and re-render static and dynamic text. */
export function setLang(next) {
  if (!LANGS.includes(next) || next === lang) return;
  lang = next;
  try {
    localStorage.setItem(STORAGE_KEY, next);
  } catch {
    // storage disabled: the choice lasts for this page only
  }
  applyStatic();
  for (const fn of listeners) fn(lang);
}

/** Call `fn` after every language switch. */
export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
