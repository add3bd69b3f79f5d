// One vehicle: identity, ECUs with their faults (the SOVD faults resource), session and
// security state, its command history with replies, and a form to run any command whose
// reply streams in over /ws/responses/{id}.

import { byId, count, debounce, fill, h, shortId, time, toast } from "./dom.js";
import { parameterFields } from "./forms.js";

const HISTORY_PAGE = 10;
const TERMINAL = new Set(["completed", "failed", "timed_out"]);
const STATUS_BITS = [
  ["testFailed", "TF"],
  ["testFailedThisOperationCycle", "TFTOC"],
  ["pendingDTC", "PDTC"],
  ["confirmedDTC", "CDTC"],
  ["testNotCompletedSinceLastClear", "TNCSLC"],
  ["testFailedSinceLastClear", "TFSLC"],
  ["testNotCompletedThisOperationCycle", "TNCTOC"],
  ["warningIndicatorRequested", "WIR"],
];

function fact(term, value) {
  return [h("dt", { text: term }), h("dd", {}, value)];
}

function compact(value) {
  return JSON.stringify(value);
}

function chunkList(chunks) {
  return h(
    "ol",
    { class: "chunks" },
    chunks.map((chunk) =>
      h(
        "li",
        {},
        h("span", { class: "chunk-head", text: `#${chunk.sequence_number}${chunk.is_final ? " (final)" : ""}` }),
        h("pre", { text: JSON.stringify(chunk.response_payload, null, 2) }),
      ),
    ),
  );
}

export class VehicleView {
  constructor(session) {
    this.session = session;
    this.vehicleId = null;
    this.vehicle = null;
    this.generation = 0;
    this.historyOffset = 0;
    this.historyTotal = 0;
    this.types = null;
    this.collect = null;
    this.feed = null;
    this.replySocket = null;
    this.expanded = new Set();
    this.replies = new Map();
    this.refreshSoon = debounce(() => {
      this.loadHistory();
      this.loadStatus();
    }, 500);
    byId("command-type").addEventListener("change", () => this.renderParameters());
    byId("command-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.run();
    });
    byId("history-prev").addEventListener("click", () => this.turnHistory(-HISTORY_PAGE));
    byId("history-next").addEventListener("click", () => this.turnHistory(HISTORY_PAGE));
  }

  async show(vehicleId) {
    const generation = ++this.generation;
    this.vehicleId = vehicleId;
    this.historyOffset = 0;
    this.expanded.clear();
    this.replies.clear();
    byId("vehicle-title").textContent = "Vehicle";
    byId("vehicle-identity").replaceChildren();
    byId("ecu-list").replaceChildren(h("p", { class: "hint", text: "Loading…" }));
    delete byId("ecu-list").dataset.faultsRead;
    byId("command-reply").replaceChildren();
    byId("command-error").textContent = "";
    byId("vehicle-sovd-link").href = `/vehicles/${vehicleId}/sovd/version-info`;
    const acts = this.session.can("engineer", "admin");
    byId("run-section").hidden = !acts;
    byId("history-section").hidden = !acts;
    const note = byId("history-note");
    note.hidden = acts;
    note.textContent = "Viewers see the vehicle and its faults; engineers and admins run commands and see their history.";
    let vehicle;
    try {
      vehicle = await this.session.json(`/api/v1/vehicles/${vehicleId}`);
    } catch (error) {
      if (generation === this.generation) {
        byId("ecu-list").replaceChildren(h("p", { class: "error", text: `Could not load the vehicle: ${error.message}` }));
      }
      return;
    }
    if (generation !== this.generation) return;
    this.vehicle = vehicle;
    byId("vehicle-title").textContent = `${vehicle.make} ${vehicle.model} ${vehicle.year} · ${vehicle.vin}`;
    this.renderEcus();
    await this.loadStatus();
    const reads = vehicle.ecus.map((ecu) => {
      this.readSecurity(ecu.ecu_address);
      return this.readFaults(ecu.ecu_address);
    });
    Promise.allSettled(reads).then(() => {
      if (generation === this.generation) byId("ecu-list").dataset.faultsRead = "all";
    });
    if (acts) {
      this.loadCommandTypes();
      this.loadHistory();
    }
    this.follow(vehicleId);
  }

  hide() {
    this.generation += 1;
    for (const socket of [this.feed, this.replySocket]) if (socket) socket.close(1000);
    this.feed = null;
    this.replySocket = null;
  }

  // Every command and status change of this vehicle refreshes its history and state.
  follow(vehicleId) {
    if (this.feed) this.feed.close(1000);
    const socket = this.session.socket(`/ws/vehicles/${vehicleId}`);
    this.feed = socket;
    socket.addEventListener("message", () => this.refreshSoon());
  }

  async loadStatus() {
    const generation = this.generation;
    let status;
    try {
      status = await this.session.json(`/api/v1/vehicles/${this.vehicleId}/status`);
    } catch {
      return;
    }
    if (generation !== this.generation) return;
    const vehicle = this.vehicle;
    const health = status.health;
    const actor = status.actor;
    byId("vehicle-identity").replaceChildren(
      ...fact("VIN", h("span", { class: "mono", id: "vehicle-vin", text: vehicle.vin })),
      ...fact("Vehicle", `${vehicle.make} ${vehicle.model} ${vehicle.year}`),
      ...fact("Fleet", vehicle.fleet || vehicle.metadata?.fleet || "–"),
      ...fact("Profile", vehicle.metadata?.profile || "–"),
      ...fact("Connection", h("span", { class: `badge ${status.connection_status}`, text: status.connection_status })),
      ...fact("Health", health ? `${health.status} (stored DTCs: ${count(health.stored_dtcs)}${health.warning_lamp ? ", warning lamp on" : ""})` : "–"),
      ...fact("Actor", actor ? `${actor.state}, ${count(actor.mailbox_depth)} queued` : "not running"),
      ...fact("Last seen", time(status.last_seen_at)),
    );
    for (const ecu of vehicle.ecus) {
      const cell = document.getElementById(`session-${ecu.ecu_address}`);
      if (cell) cell.textContent = actor?.session?.[ecu.ecu_address] || "–";
    }
  }

  renderEcus() {
    const acts = this.session.can("engineer", "admin");
    const cards = this.vehicle.ecus.map((ecu) => {
      const address = ecu.ecu_address;
      return h(
        "article",
        { class: "ecu", id: `ecu-${address}`, "aria-labelledby": `ecu-title-${address}` },
        h("h3", { id: `ecu-title-${address}` }, `${ecu.name} `, h("span", { class: "mono", text: address })),
        h(
          "dl",
          { class: "facts small" },
          ...fact("System", ecu.system_name),
          ...fact("Part / software", `${ecu.part_number} / ${ecu.software_version}`),
          ...fact("Session", h("span", { id: `session-${address}`, text: "–" })),
          ...fact("Security", h("span", { id: `security-${address}`, text: "–" })),
        ),
        h("div", { class: "faults", id: `faults-${address}` }, h("p", { class: "hint", text: "Reading faults…" })),
        h(
          "div",
          { class: "actions" },
          h("button", { type: "button", onclick: () => this.readFaults(address), text: "Read faults" }),
          acts ? h("button", { type: "button", class: "danger", id: `clear-${address}`, onclick: () => this.clearFaults(address), text: "Clear DTCs" }) : null,
        ),
      );
    });
    byId("ecu-list").replaceChildren(...cards);
  }

  componentPath(address) {
    return `/vehicles/${this.vehicleId}/sovd/v1/components/${address}`;
  }

  async readFaults(address) {
    const generation = this.generation;
    const box = document.getElementById(`faults-${address}`);
    if (box === null) return;
    box.setAttribute("aria-busy", "true");
    let faults;
    try {
      faults = (await this.session.json(`${this.componentPath(address)}/faults`)).items;
    } catch (error) {
      if (generation === this.generation) {
        box.replaceChildren(h("p", { class: "error", text: `Faults could not be read: ${error.message}` }));
        box.removeAttribute("aria-busy");
      }
      return;
    }
    if (generation !== this.generation) return;
    box.removeAttribute("aria-busy");
    box.dataset.faults = String(faults.length);
    if (faults.length === 0) {
      box.replaceChildren(h("p", { class: "ok", text: "No stored faults." }));
      return;
    }
    const rows = faults.map((fault) =>
      h(
        "tr",
        {},
        h("td", { class: "mono", text: fault.display_code }),
        h("td", { text: fault.fault_name }),
        h("td", { class: "num", text: fault.severity }),
        h("td", { text: fault.status.aggregatedStatus }),
        h(
          "td",
          { class: "bits" },
          STATUS_BITS.map(([name, short]) => {
            const set = fault.status[name] === "1";
            return h("abbr", { class: set ? "bit on" : "bit", title: `${name} = ${set ? 1 : 0}` }, short, h("span", { class: "visually-hidden", text: set ? " set" : " clear" }));
          }),
          h("span", { class: "mono mask", text: `0x${fault.status.mask}` }),
        ),
      ),
    );
    box.replaceChildren(
      h(
        "table",
        { class: "compact" },
        h("caption", { class: "visually-hidden", text: `Stored faults of ECU ${address}` }),
        h("thead", {}, h("tr", {}, ["Code", "Description", "Severity", "State", "Status bits"].map((title) => h("th", { scope: "col", text: title })))),
        h("tbody", {}, rows),
      ),
    );
  }

  async readSecurity(address) {
    const generation = this.generation;
    try {
      const mode = await this.session.json(`${this.componentPath(address)}/modes/security`);
      if (generation === this.generation) byId(`security-${address}`).textContent = mode.value;
    } catch {
      // Left as "–": the state is shown when it can be read.
    }
  }

  async clearFaults(address) {
    const button = byId(`clear-${address}`);
    button.disabled = true;
    try {
      await this.session.json(`${this.componentPath(address)}/faults`, { method: "DELETE" });
      toast(`Cleared the DTCs of ECU ${address}.`);
      await this.readFaults(address);
    } catch (error) {
      toast(`Clearing failed: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  }

  async loadCommandTypes() {
    if (this.types === null) {
      try {
        this.types = await this.session.json("/api/v1/command-types");
      } catch (error) {
        byId("command-error").textContent = `Command types: ${error.message}`;
        return;
      }
    }
    const select = byId("command-type");
    const chosen = select.value;
    select.replaceChildren(...this.types.map((type) => h("option", { value: type.name, text: type.name })));
    if (chosen) select.value = chosen;
    this.renderParameters();
  }

  renderParameters() {
    const type = (this.types || []).find((entry) => entry.name === byId("command-type").value);
    if (!type) return;
    byId("command-description").textContent = type.description;
    const ecus = this.vehicle ? this.vehicle.ecus : [];
    const dataIds = [...new Set(ecus.flatMap((ecu) => ecu.data_ids || []))];
    this.collect = parameterFields(byId("command-params"), type.parameters, {
      ecuAddress: ecus.map((ecu) => ({ value: ecu.ecu_address, label: ecu.name })),
      dataId: dataIds.map((id) => ({ value: id, label: id })),
    });
  }

  async run() {
    const error = byId("command-error");
    error.textContent = "";
    if (this.collect === null) return;
    let params;
    try {
      params = this.collect();
    } catch (problem) {
      error.textContent = problem.message;
      return;
    }
    const name = byId("command-type").value;
    const submit = byId("command-submit");
    submit.disabled = true;
    // The previous command's reply goes at once, so it is never taken for this one's.
    byId("command-reply").replaceChildren();
    let command;
    try {
      command = await this.session.json("/api/v1/commands", {
        method: "POST",
        body: { vehicle_id: this.vehicleId, command_name: name, command_params: params },
      });
    } catch (problem) {
      const fields = problem.fieldErrors?.map((entry) => `${entry.field}: ${entry.message}`).join("; ");
      error.textContent = fields ? `${problem.message} (${fields})` : problem.message;
      return;
    } finally {
      submit.disabled = false;
    }
    this.streamReply(command, params);
  }

  streamReply(command, params) {
    const status = h("p", { class: "reply-status", dataset: { status: command.status } });
    const chunks = h("ol", { class: "chunks" });
    const setStatus = (text, message) => {
      status.dataset.status = text;
      status.textContent = `${command.command_name} · command ${shortId(command.command_id)} · ${text}${message ? ` · ${message}` : ""}`;
    };
    setStatus(command.status);
    byId("command-reply").replaceChildren(h("h3", { text: "Reply" }), status, chunks);
    if (this.replySocket) this.replySocket.close(1000);
    const socket = this.session.socket(`/ws/responses/${command.command_id}`);
    this.replySocket = socket;
    const vehicleId = this.vehicleId;
    socket.addEventListener("message", (message) => {
      const event = JSON.parse(message.data);
      if (event.event === "response") {
        chunks.append(
          h(
            "li",
            {},
            h("span", { class: "chunk-head", text: `#${event.sequence_number}${event.is_final ? " (final)" : ""}` }),
            h("pre", { text: JSON.stringify(event.response_payload, null, 2) }),
          ),
        );
      } else if (event.status) {
        setStatus(event.status, event.error_message);
      }
    });
    socket.addEventListener("close", (event) => {
      if (this.replySocket === socket) this.replySocket = null;
      if (event.code !== 1000 && !TERMINAL.has(status.dataset.status)) {
        setStatus(status.dataset.status, `stream closed (${event.code} ${event.reason})`);
      }
      if (this.vehicleId !== vehicleId) return;
      this.loadHistory();
      if (params.ecuAddress && ["ReadDTC", "ClearDTC"].includes(command.command_name)) this.readFaults(params.ecuAddress);
    });
  }

  turnHistory(step) {
    const offset = this.historyOffset + step;
    if (offset < 0 || offset >= this.historyTotal) return;
    this.historyOffset = offset;
    this.loadHistory();
  }

  async loadHistory() {
    if (!this.session.can("engineer", "admin")) return;
    const generation = this.generation;
    const query = new URLSearchParams({ vehicle_id: this.vehicleId, limit: HISTORY_PAGE, offset: this.historyOffset });
    let page;
    try {
      page = await this.session.json(`/api/v1/commands?${query}`);
    } catch (error) {
      if (generation === this.generation) byId("history-page-info").textContent = `Could not load the history: ${error.message}`;
      return;
    }
    if (generation !== this.generation) return;
    this.historyTotal = page.total;
    const rows = [];
    for (const command of page.commands) {
      const open = this.expanded.has(command.command_id);
      const detail = h("tr", { class: "detail", hidden: !open }, h("td", { colspan: 5 }));
      const toggle = h("button", {
        type: "button",
        "aria-expanded": String(open),
        text: open ? "Hide" : "Show",
        onclick: () => this.toggleReplies(command, toggle, detail),
      });
      rows.push(
        h(
          "tr",
          { dataset: { commandId: command.command_id } },
          h("td", { text: time(command.submitted_at) }),
          h("td", { text: command.command_name }),
          h("td", { class: "mono", text: compact(command.command_params) }),
          h("td", {}, h("span", { class: `badge ${command.status}`, text: command.status }), command.error_message ? ` ${command.error_message}` : ""),
          h("td", {}, toggle),
        ),
        detail,
      );
      if (open) this.showReplies(command, detail);
    }
    fill(document.querySelector("#history-table tbody"), rows, "No commands yet", 5);
    const first = page.total === 0 ? 0 : this.historyOffset + 1;
    byId("history-page-info").textContent = `${count(first)}–${count(this.historyOffset + page.commands.length)} of ${count(page.total)}`;
    byId("history-prev").disabled = this.historyOffset === 0;
    byId("history-next").disabled = this.historyOffset + page.commands.length >= page.total;
  }

  toggleReplies(command, toggle, detail) {
    const open = detail.hidden;
    detail.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    toggle.textContent = open ? "Hide" : "Show";
    if (open) {
      this.expanded.add(command.command_id);
      this.showReplies(command, detail);
    } else {
      this.expanded.delete(command.command_id);
    }
  }

  async showReplies(command, detail) {
    const cell = detail.firstChild;
    let chunks = this.replies.get(command.command_id);
    if (chunks === undefined) {
      try {
        chunks = await this.session.json(`/api/v1/commands/${command.command_id}/responses`);
      } catch (error) {
        cell.replaceChildren(h("p", { class: "error", text: error.message }));
        return;
      }
      if (TERMINAL.has(command.status)) this.replies.set(command.command_id, chunks);
    }
    cell.replaceChildren(chunks.length ? chunkList(chunks) : h("p", { class: "hint", text: "No reply stored." }));
  }
}
