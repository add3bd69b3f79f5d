// Admins: fleets (spawn from TOML, delete), the current user, the cluster, the audit log.

import { byId, count, debounce, fill, h, time, toast } from "./dom.js";

const AUDIT_PAGE = 25;
// How often the cluster view is read again while the admin page is shown.
const CLUSTER_REFRESH_MS = 2000;
const EXAMPLE = `# A fleet config, as a file for \`sovd-sim serve --fleet\` would hold it.
[[fleets]]
name = "demo-extra"
count = 100
profile = "vw-golf"
vin_prefix = "WVWZZZ9X"
`;

export class AdminView {
  constructor(session) {
    this.session = session;
    this.auditOffset = 0;
    this.auditTotal = 0;
    this.arming = null;
    this.clusterTimer = null;
    byId("fleet-toml").value = EXAMPLE;
    byId("fleet-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.spawn();
    });
    const reload = () => {
      this.auditOffset = 0;
      this.loadAudit();
    };
    byId("audit-action").addEventListener("input", debounce(reload, 300));
    byId("audit-filters").addEventListener("submit", (event) => {
      event.preventDefault();
      reload();
    });
    byId("audit-prev").addEventListener("click", () => this.turnAudit(-AUDIT_PAGE));
    byId("audit-next").addEventListener("click", () => this.turnAudit(AUDIT_PAGE));
  }

  show() {
    const user = this.session.user;
    byId("user-facts").replaceChildren(
      h("dt", { text: "Signed in as" }),
      h("dd", { text: user.username }),
      h("dt", { text: "Role" }),
      h("dd", { text: user.role }),
      h("dt", { text: "E-mail" }),
      h("dd", { text: user.email || "–" }),
      h("dt", { text: "User id" }),
      h("dd", { class: "mono", text: user.user_id }),
    );
    this.loadFleets();
    this.loadAudit();
    this.loadCluster();
  }

  hide() {
    clearTimeout(this.clusterTimer);
    this.clusterTimer = null;
  }

  // Nodes and partition owners, read again every CLUSTER_REFRESH_MS while the page shows.
  async loadCluster() {
    clearTimeout(this.clusterTimer);
    if (byId("admin-view").hidden) return;
    let cluster;
    try {
      cluster = await this.session.json("/api/v1/cluster");
    } catch (error) {
      byId("cluster-summary").textContent = `Could not read the cluster: ${error.message}`;
      this.clusterTimer = setTimeout(() => this.loadCluster(), CLUSTER_REFRESH_MS);
      return;
    }
    const detail = byId("cluster-detail");
    if (!cluster.enabled) {
      byId("cluster-summary").textContent = "Cluster mode is off: this process runs every vehicle.";
      detail.hidden = true;
      return;
    }
    const live = cluster.nodes.filter((node) => node.live).length;
    const owned = cluster.partition_owners.filter((partition) => partition.owner).length;
    byId("cluster-summary").textContent =
      `${live} of ${cluster.nodes.length} nodes live; ${owned} of ${cluster.partitions} partitions owned; ` +
      `this page is served by ${cluster.node_id}${cluster.holds_its_share ? ", which holds its share" : ", which is still taking its share"}.`;
    detail.hidden = false;
    const nodes = cluster.nodes.map((node) =>
      h(
        "tr",
        { dataset: { node: node.node_id } },
        h("th", { scope: "row", class: "mono", text: node.node_id }),
        h("td", { class: "num", text: `${count(node.heartbeat_age_ms)} ms` }),
        h("td", { text: node.live ? "yes" : "no" }),
        h("td", { class: "num", text: count(node.partitions.length) }),
      ),
    );
    fill(document.querySelector("#cluster-node-table tbody"), nodes, "No nodes", 4);
    const partitions = cluster.partition_owners.map((partition) =>
      h(
        "tr",
        { dataset: { partition: partition.partition } },
        h("th", { scope: "row", class: "num", text: partition.partition }),
        h("td", { class: "mono", text: partition.owner || "none" }),
        h("td", { class: "num", text: partition.fencing_token ?? "–" }),
        h("td", { class: "num", text: partition.lease_expires_in_ms === null ? "–" : `${count(partition.lease_expires_in_ms)} ms` }),
        h("td", { class: "num", text: count(partition.lag) }),
      ),
    );
    fill(document.querySelector("#cluster-partition-table tbody"), partitions, "No partitions", 5);
    this.clusterTimer = setTimeout(() => this.loadCluster(), CLUSTER_REFRESH_MS);
  }

  async loadFleets() {
    let fleets;
    try {
      fleets = await this.session.json("/api/v1/fleets");
    } catch (error) {
      toast(`Fleets: ${error.message}`);
      return;
    }
    const rows = fleets.map((fleet) =>
      h(
        "tr",
        { dataset: { fleet: fleet.name } },
        h("th", { scope: "row", text: fleet.name }),
        h("td", { text: fleet.profile || "–" }),
        h("td", { class: "num", text: count(fleet.count) }),
        h("td", { text: fleet.origin }),
        h("td", { text: fleet.running ? "running" : "recorded for the next start" }),
        h("td", {}, h("button", { type: "button", class: "danger", onclick: (event) => this.remove(fleet.name, event.currentTarget), text: "Delete" })),
      ),
    );
    fill(document.querySelector("#admin-fleet-table tbody"), rows, "No fleets", 6);
  }

  // The first click arms the button, the second (within 5 s) deletes.
  async remove(name, button) {
    if (this.arming !== button) {
      this.arming = button;
      button.textContent = `Really delete ${name}?`;
      setTimeout(() => {
        if (this.arming === button) {
          this.arming = null;
          button.textContent = "Delete";
        }
      }, 5000);
      return;
    }
    this.arming = null;
    button.disabled = true;
    try {
      await this.session.json(`/api/v1/fleets/${encodeURIComponent(name)}`, { method: "DELETE" });
      toast(`Fleet ${name} deleted.`);
    } catch (error) {
      toast(`Could not delete ${name}: ${error.message}`);
    }
    this.loadFleets();
  }

  async spawn() {
    const result = byId("fleet-result");
    result.replaceChildren(h("p", { class: "hint", text: "Spawning…" }));
    try {
      const body = await this.session.json("/api/v1/fleets", {
        method: "POST",
        body: byId("fleet-toml").value,
        contentType: "application/toml",
      });
      const names = body.fleets.map((fleet) => `${fleet.name}${fleet.created ? "" : " (already running)"}`);
      result.replaceChildren(h("p", { class: "ok", text: `Spawned ${count(body.vehicles)} vehicles: ${names.join(", ")}.` }));
    } catch (error) {
      result.replaceChildren(
        h("p", { class: "error", text: error.message }),
        h("ul", { class: "error" }, error.fieldErrors.map((entry) => h("li", { text: `${entry.field}: ${entry.message}` }))),
      );
    }
    this.loadFleets();
  }

  turnAudit(step) {
    const offset = this.auditOffset + step;
    if (offset < 0 || offset >= this.auditTotal) return;
    this.auditOffset = offset;
    this.loadAudit();
  }

  async loadAudit() {
    const query = new URLSearchParams({ limit: AUDIT_PAGE, offset: this.auditOffset });
    const action = byId("audit-action").value.trim();
    if (action) query.set("action", action);
    let page;
    try {
      page = await this.session.json(`/api/v1/audit-logs?${query}`);
    } catch (error) {
      byId("audit-page-info").textContent = `Could not load the audit log: ${error.message}`;
      return;
    }
    this.auditTotal = page.total;
    const rows = page.audit_logs.map((entry) =>
      h(
        "tr",
        {},
        h("td", { text: time(entry.timestamp) }),
        h("td", { text: entry.action }),
        h("td", { class: "mono", text: entry.user_id ? entry.user_id.slice(0, 8) : "–" }),
        h("td", { text: entry.entity_type ? `${entry.entity_type} ${(entry.entity_id || "").slice(0, 8)}` : "–" }),
        h("td", { class: "mono", text: JSON.stringify(entry.details) }),
      ),
    );
    fill(document.querySelector("#audit-table tbody"), rows, "No entries", 5);
    const first = page.total === 0 ? 0 : this.auditOffset + 1;
    byId("audit-page-info").textContent = `${count(first)}–${count(this.auditOffset + page.audit_logs.length)} of ${count(page.total)}`;
    byId("audit-prev").disabled = this.auditOffset === 0;
    byId("audit-next").disabled = this.auditOffset + page.audit_logs.length >= page.total;
  }
}
