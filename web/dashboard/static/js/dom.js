// Small DOM helpers: elements are built with textContent, never from HTML strings.

export function byId(id) {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`no element #${id}`);
  return element;
}

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function fill(tbody, rows, emptyText, columns) {
  if (rows.length === 0) {
    tbody.replaceChildren(h("tr", {}, h("td", { colspan: columns, class: "empty", text: emptyText })));
  } else {
    tbody.replaceChildren(...rows);
  }
}

const integer = new Intl.NumberFormat("en");
const decimal = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });

export function count(value) {
  return value === null || value === undefined ? "–" : integer.format(value);
}

export function number(value, unit = "") {
  return value === null || value === undefined ? "–" : `${decimal.format(value)}${unit}`;
}

export function duration(ms) {
  if (ms === null || ms === undefined) return "–";
  return ms >= 1000 ? `${decimal.format(ms / 1000)} s` : `${decimal.format(ms)} ms`;
}

export function time(iso) {
  if (!iso) return "–";
  const moment = new Date(iso);
  return moment.toLocaleString("en-GB", { hour12: false });
}

export function clock(moment) {
  const pad = (n, width = 2) => String(n).padStart(width, "0");
  return `${pad(moment.getHours())}:${pad(moment.getMinutes())}:${pad(moment.getSeconds())}.${pad(moment.getMilliseconds(), 3)}`;
}

export function shortId(id) {
  return id ? String(id).slice(0, 8) : "–";
}

let toastTimer = null;

export function toast(message) {
  const box = byId("toast");
  box.textContent = message;
  box.classList.add("shown");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => box.classList.remove("shown"), 5000);
}

export function debounce(action, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => action(...args), ms);
  };
}

// How a failed command is grouped: the same rule as the server's statistics.
export function failureReason(status, message) {
  const text = message || "";
  if (text.includes("disconnected") || text.includes("connection to the vehicle lost")) return "offline";
  if (text.startsWith("NRC ")) return "nrc";
  if (status === "timed_out") return "timeout";
  return "other";
}

export const REASON_LABELS = {
  nrc: "Negative reply (NRC)",
  timeout: "Timeout",
  offline: "Vehicle offline",
  other: "Other",
};
