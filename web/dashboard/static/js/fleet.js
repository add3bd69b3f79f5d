// The fleet overview: live statistics (polled from /api/v1/stats) and a paged vehicle table
// filtered by the server.

import { LineChart } from "./charts.js";
import { REASON_LABELS, byId, count, debounce, duration, fill, h, number, time, toast } from "./dom.js";

const PAGE = 50;
const POLL_MS = 1000;
const CONNECTIONS = ["connected", "intermittent", "disconnected"];

function sum(values) {
  return values.reduce((total, value) => total + value, 0);
}

export class FleetView {
  constructor(session) {
    this.session = session;
    this.offset = 0;
    this.total = 0;
    this.generation = 0;
    this.request = 0;
    this.shownFleets = "";
    this.shownFailures = "";
    this.rateChart = new LineChart(
      byId("chart-rate"),
      byId("legend-rate"),
      [
        { label: "completed", color: "#1b7f3b" },
        { label: "failed", color: "#c62828" },
      ],
      "/s",
    );
    this.latencyChart = new LineChart(
      byId("chart-latency"),
      byId("legend-latency"),
      [
        { label: "p50", color: "#1f5fbf" },
        { label: "p99", color: "#a34f00" },
      ],
      " ms",
    );
    const reload = () => {
      this.offset = 0;
      this.loadVehicles();
    };
    byId("vehicle-search").addEventListener("input", debounce(reload, 300));
    byId("vehicle-status").addEventListener("change", reload);
    byId("vehicle-fleet").addEventListener("change", reload);
    byId("vehicle-filters").addEventListener("submit", (event) => {
      event.preventDefault();
      reload();
    });
    byId("vehicle-prev").addEventListener("click", () => this.turn(-PAGE));
    byId("vehicle-next").addEventListener("click", () => this.turn(PAGE));
  }

  show() {
    this.generation += 1;
    this.poll(this.generation);
    this.loadVehicles();
  }

  hide() {
    this.generation += 1;
  }

  async poll(generation) {
    if (generation !== this.generation) return;
    try {
      if (!document.hidden) this.render(await this.session.json("/api/v1/stats"));
    } catch (error) {
      if (generation === this.generation && this.session.signedIn) toast(`Statistics: ${error.message}`);
    }
    if (generation === this.generation) setTimeout(() => this.poll(generation), POLL_MS);
  }

  render(stats) {
    const { actors, fleets, commands } = stats;
    const byConnection = Object.fromEntries(CONNECTIONS.map((name) => [name, 0]));
    for (const fleet of fleets) {
      for (const [name, value] of Object.entries(fleet.vehicles_by_connection)) {
        byConnection[name] = (byConnection[name] || 0) + value;
      }
    }
    byId("stat-vehicles").textContent = count(actors.vehicles);
    for (const name of CONNECTIONS) byId(`stat-${name}`).textContent = count(byConnection[name]);
    byId("stat-busy").textContent = count(actors.busy);
    byId("stat-mailbox").textContent = count(actors.mailbox_depth);

    // The last second is still running: charts and rates use the ones before it.
    const done = (series) => series.slice(0, -1);
    const completed = done(commands.completed);
    const failed = done(commands.failed);
    const recent = (series) => sum(series.slice(-5)) / 5;
    byId("stat-completed-rate").textContent = number(recent(completed));
    byId("stat-failed-rate").textContent = number(recent(failed));
    byId("stat-p50").textContent = duration(commands.totals.p50_ms);
    byId("stat-p99").textContent = duration(commands.totals.p99_ms);
    this.rateChart.update([completed, failed], [recent(completed), recent(failed)]);
    const p50 = done(commands.p50_ms);
    const p99 = done(commands.p99_ms);
    const last = (series) => [...series].reverse().find((value) => value !== null) ?? null;
    this.latencyChart.update([p50, p99], [last(p50), last(p99)]);

    this.renderFailures(commands);
    this.renderFleets(fleets);
  }

  renderFailures(commands) {
    const key = JSON.stringify([commands.failures, commands.nrcs]);
    if (key === this.shownFailures) return;
    this.shownFailures = key;
    const rows = [];
    for (const [reason, total] of Object.entries(commands.failures)) {
      rows.push(h("tr", {}, h("th", { scope: "row", text: REASON_LABELS[reason] }), h("td", { class: "num", text: count(total) })));
      if (reason === "nrc") {
        for (const [nrc, times] of Object.entries(commands.nrcs).slice(0, 5)) {
          rows.push(h("tr", { class: "sub" }, h("td", { text: nrc }), h("td", { class: "num", text: count(times) })));
        }
      }
    }
    fill(document.querySelector("#failure-table tbody"), rows, "No failures", 2);
  }

  renderFleets(fleets) {
    const key = JSON.stringify(fleets);
    if (key === this.shownFleets) return;
    this.shownFleets = key;
    const fleetRows = fleets.map((fleet) =>
      h(
        "tr",
        {},
        h("th", { scope: "row" }, h("button", { type: "button", class: "link", onclick: () => this.pickFleet(fleet.name), text: fleet.name })),
        h("td", { text: fleet.profile }),
        h("td", { class: "num", text: count(fleet.count) }),
        ...CONNECTIONS.map((name) => h("td", { class: "num", text: count(fleet.vehicles_by_connection[name] || 0) })),
      ),
    );
    fill(document.querySelector("#fleet-table tbody"), fleetRows, "No fleets", 6);

    const profiles = new Map();
    for (const fleet of fleets) {
      const entry = profiles.get(fleet.profile) || { model: `${fleet.make} ${fleet.model}`, count: 0 };
      entry.count += fleet.count;
      profiles.set(fleet.profile, entry);
    }
    const profileRows = [...profiles].map(([name, entry]) =>
      h("tr", {}, h("th", { scope: "row", text: name }), h("td", { text: entry.model }), h("td", { class: "num", text: count(entry.count) })),
    );
    fill(document.querySelector("#profile-table tbody"), profileRows, "No vehicles", 3);

    const select = byId("vehicle-fleet");
    const chosen = select.value;
    select.replaceChildren(
      h("option", { value: "", text: "any" }),
      ...fleets.map((fleet) => h("option", { value: fleet.name, text: fleet.name })),
    );
    select.value = fleets.some((fleet) => fleet.name === chosen) ? chosen : "";
  }

  pickFleet(name) {
    byId("vehicle-fleet").value = name;
    this.offset = 0;
    this.loadVehicles();
    byId("vehicles-title").scrollIntoView({ block: "start" });
  }

  turn(step) {
    const offset = this.offset + step;
    if (offset < 0 || offset >= this.total) return;
    this.offset = offset;
    this.loadVehicles();
  }

  async loadVehicles() {
    const request = ++this.request;
    const query = new URLSearchParams({ limit: PAGE, offset: this.offset });
    for (const name of ["search", "status", "fleet"]) {
      const value = byId(`vehicle-${name}`).value.trim();
      // VINs are upper case.
      if (value) query.set(name, name === "search" ? value.toUpperCase() : value);
    }
    let vehicles;
    let total;
    try {
      const response = await this.session.request("GET", `/api/v1/vehicles?${query}`);
      vehicles = await response.json();
      total = Number(response.headers.get("X-Total-Count") || vehicles.length);
    } catch (error) {
      if (request === this.request) byId("vehicle-page-info").textContent = `Could not load vehicles: ${error.message}`;
      return;
    }
    if (request !== this.request) return;
    this.total = total;
    const rows = vehicles.map((vehicle) =>
      h(
        "tr",
        {},
        h("td", {}, h("a", { href: `#/vehicles/${vehicle.vehicle_id}`, class: "mono", text: vehicle.vin })),
        h("td", { text: `${vehicle.make} ${vehicle.model} ${vehicle.year}` }),
        h("td", { text: vehicle.metadata?.fleet || "–" }),
        h("td", {}, h("span", { class: `badge ${vehicle.connection_status}`, text: vehicle.connection_status })),
        h("td", { text: time(vehicle.last_seen_at) }),
      ),
    );
    fill(document.querySelector("#vehicle-table tbody"), rows, "No vehicle matches", 5);
    const first = total === 0 ? 0 : this.offset + 1;
    const lastShown = this.offset + vehicles.length;
    byId("vehicle-page-info").textContent = `${count(first)}–${count(lastShown)} of ${count(total)}`;
    byId("vehicle-prev").disabled = this.offset === 0;
    byId("vehicle-next").disabled = lastShown >= total;
  }
}
