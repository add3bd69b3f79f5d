// The fleet feed (/ws/fleet, admins): every event is counted as it arrives, the table of the
// latest ones is redrawn a few times a second from a fixed pool of rows, so thousands of
// events a second never queue up behind the rendering.

import { REASON_LABELS, byId, clock, count, failureReason, fill, h, shortId } from "./dom.js";

const ROWS = 50;
const RENDER_MS = 250;
const STATUSES = ["pending", "in_progress", "completed", "failed", "timed_out"];
const TERMINAL = new Set(["completed", "failed", "timed_out"]);

export class FeedView {
  constructor(session) {
    this.session = session;
    this.socket = null;
    this.running = false;
    this.paused = false;
    this.reconnects = 0;
    this.ring = new Array(ROWS);
    this.head = 0;
    this.size = 0;
    this.reset();
    this.rows = [];
    const body = document.querySelector("#feed-table tbody");
    for (let index = 0; index < ROWS; index += 1) {
      const link = h("a", { class: "mono" });
      const cells = [h("td", { class: "mono" }), h("td"), h("td"), h("td", {}, link), h("td")];
      const row = h("tr", { hidden: true }, cells);
      this.rows.push({ row, cells, link });
      body.append(row);
    }
    byId("feed-controls").addEventListener("change", () => this.connect());
    byId("feed-controls").addEventListener("submit", (event) => event.preventDefault());
    const pause = byId("feed-pause");
    pause.addEventListener("click", () => {
      this.paused = !this.paused;
      pause.setAttribute("aria-pressed", String(this.paused));
      pause.textContent = this.paused ? "Resume" : "Pause";
    });
  }

  reset() {
    this.total = 0;
    this.inSecond = 0;
    this.rate = 0;
    this.secondStarted = performance.now();
    this.byStatus = {};
    this.failures = { nrc: 0, timeout: 0, offline: 0, other: 0 };
    this.nrcs = {};
    this.lagMs = null;
    this.worstLagMs = 0;
    this.shownTables = "";
    this.dirty = true;
  }

  show() {
    this.running = true;
    this.reset();
    this.connect();
    this.timer = setInterval(() => this.render(), RENDER_MS);
  }

  hide() {
    this.running = false;
    clearInterval(this.timer);
    this.disconnect();
  }

  disconnect() {
    const socket = this.socket;
    this.socket = null;
    if (socket !== null) socket.close(1000);
  }

  wanted() {
    return [...document.querySelectorAll("#feed-controls input[name=status]:checked")].map((box) => box.value);
  }

  connect() {
    this.disconnect();
    if (!this.running) return;
    const statuses = this.wanted();
    if (statuses.length === 0) {
      this.setState("no status chosen");
      return;
    }
    // Batched: each frame holds every event queued for us, so a burst is one task, not many.
    const query = new URLSearchParams({ batch: "true" });
    if (statuses.length < STATUSES.length) query.set("status", statuses.join(","));
    const socket = this.session.socket(`/ws/fleet?${query}`);
    this.socket = socket;
    this.setState("connecting");
    socket.addEventListener("open", () => this.setState("live"));
    socket.addEventListener("message", (message) => this.receive(message.data));
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      const why = event.code === 1013 ? "fell behind" : `closed (${event.code}${event.reason ? `: ${event.reason}` : ""})`;
      this.setState(`${why}; reconnecting`);
      if (this.running && this.session.signedIn) {
        this.reconnects += 1;
        byId("feed-state").dataset.reconnects = String(this.reconnects);
        setTimeout(() => this.socket === null && this.connect(), 1000);
      }
    });
  }

  setState(text) {
    const state = byId("feed-state");
    state.textContent = text;
    state.dataset.state = text;
  }

  receive(data) {
    const now = Date.now();
    for (const message of JSON.parse(data)) this.count(message, now);
  }

  count(message, now) {
    this.total += 1;
    this.inSecond += 1;
    this.dirty = true;
    if (message.event === "resync") {
      this.byStatus.resync = (this.byStatus.resync || 0) + 1;
      return;
    }
    const status = message.event === "response" ? "reply chunk" : message.status;
    this.byStatus[status] = (this.byStatus[status] || 0) + 1;
    if (message.event === "error") {
      const reason = failureReason(message.status, message.error_message);
      this.failures[reason] += 1;
      if (reason === "nrc") this.nrcs[message.error_message] = (this.nrcs[message.error_message] || 0) + 1;
    }
    if (TERMINAL.has(message.status) && message.completed_at) {
      this.lagMs = Math.max(0, now - Date.parse(message.completed_at));
      this.worstLagMs = Math.max(this.worstLagMs, this.lagMs);
    }
    if (this.paused) return;
    message.receivedAt = now;
    this.ring[this.head] = message;
    this.head = (this.head + 1) % ROWS;
    this.size = Math.min(this.size + 1, ROWS);
  }

  render() {
    const now = performance.now();
    if (now - this.secondStarted >= 1000) {
      this.rate = (this.inSecond * 1000) / (now - this.secondStarted);
      this.inSecond = 0;
      this.secondStarted = now;
      byId("feed-rate").textContent = count(Math.round(this.rate));
      const lag = byId("feed-lag");
      lag.textContent = this.lagMs === null ? "–" : `${count(this.lagMs)} ms`;
      lag.dataset.worstMs = String(this.worstLagMs);
    }
    if (!this.dirty) return;
    this.dirty = false;
    byId("feed-total").textContent = count(this.total);
    if (this.lagMs !== null) byId("feed-lag").dataset.ms = String(this.lagMs);
    this.renderTables();
    for (let index = 0; index < ROWS; index += 1) {
      const { row, cells, link } = this.rows[index];
      if (index >= this.size) {
        row.hidden = true;
        continue;
      }
      const message = this.ring[(this.head - 1 - index + ROWS) % ROWS];
      row.hidden = false;
      row.className = message.event === "error" ? "failed" : "";
      row.dataset.commandId = message.command_id;
      cells[0].textContent = clock(new Date(message.receivedAt));
      cells[1].textContent = message.event === "response" ? `reply #${message.sequence_number}` : message.status;
      cells[2].textContent = message.command_name || shortId(message.command_id);
      link.textContent = shortId(message.vehicle_id);
      link.href = `#/vehicles/${message.vehicle_id}`;
      cells[4].textContent = message.error_message || (message.is_final ? "final" : "");
    }
  }

  renderTables() {
    const key = JSON.stringify([this.failures, this.nrcs, this.byStatus]);
    if (key === this.shownTables) return;
    this.shownTables = key;
    const failureRows = [];
    for (const [reason, total] of Object.entries(this.failures)) {
      failureRows.push(h("tr", {}, h("th", { scope: "row", text: REASON_LABELS[reason] }), h("td", { class: "num", text: count(total) })));
      if (reason === "nrc") {
        const top = Object.entries(this.nrcs).sort((a, b) => b[1] - a[1]).slice(0, 5);
        for (const [nrc, times] of top) {
          failureRows.push(h("tr", { class: "sub" }, h("td", { text: nrc }), h("td", { class: "num", text: count(times) })));
        }
      }
    }
    fill(document.querySelector("#feed-failures tbody"), failureRows, "No failures", 2);
    const countRows = Object.entries(this.byStatus).map(([status, total]) =>
      h("tr", {}, h("th", { scope: "row", text: status }), h("td", { class: "num", text: count(total) })),
    );
    fill(document.querySelector("#feed-counts tbody"), countRows, "No events yet", 2);
  }
}
